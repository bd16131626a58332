// lnic_echo: sends every received frame back out (TX).
//
// Zero-copy by default: the frame is transmitted straight from its pool page
// (send_page) and the page goes back through the RETURN ring only once the
// device's TX cons has passed it. With copy=1 the frame is copied into a
// driver-owned TX buffer and the page is returned at once.
//
// Command line (key=value, all optional):
//   mode=irq|poll   as lnic_sink (default irq: HLT between interrupts)
//   copy=0|1        send from the RX page (0, default) or copy (1)
//   kick=N          transmit N pktgen-format frames first (for loopback /
//                   two-VM setups where nothing arrives until someone sends)
//   kick_len=N      length of those frames (default 256)
//   kick_retry_ms=N send the kick frames again every N ms while nothing has come
//                   back (default 500; 0 = once): the peer may not be up yet
//   frames=N idle_ms=N wait_ms=N seconds=N batch=N   as lnic_sink
//   + driver keys (lnic_common.h)
//
// Last line: lnic_echo: frames=N bytes=B echoed=E tx_dropped=D errors=X
// Exit 0 if frames > 0, every echo was transmitted and completed, and the driver
// saw no device fault.
#include "guest/programs/lnic_common.h"

namespace {

constexpr const char* kWho = "lnic_echo";
constexpr const char* kKeys[] = {"mode",   "copy",    "kick",    "kick_len", "kick_retry_ms",
                                 "frames", "idle_ms", "wait_ms", "seconds",  "batch"};

struct Echo {
  bool copy = false;
  uint64_t frames = 0;
  uint64_t bytes = 0;
  uint64_t echoed = 0;
  uint64_t dropped = 0;  // TX refused (ring full for 1 s, ...)
};

constinit Echo g_echo;
constinit guest::Lnic g_nic;
alignas(64) uint8_t g_kick_frame[LNIC_FRAME_MAX];

// Kick frames: N pktgen-format frames sent at start, and again every retry_ms
// for as long as nothing has come back (the peer VM may not have enabled its
// NIC yet when the first ones arrive: its device drops them as not running).
struct Kicker {
  uint64_t count = 0;
  uint32_t len = 256;
  uint64_t retry_ms = 500;
  uint64_t seq = 0;
  uint64_t rounds = 0;
  uint64_t sent = 0;
  uint64_t last_tsc = 0;
};
constinit Kicker g_kick;

// Interrupts off (or poll mode). Returns how many frames were queued.
uint64_t kick_round() {
  uint64_t n = 0;
  for (; n < g_kick.count; ++n) {
    const uint64_t seq = g_kick.seq++;
    guest::lnic::fill_pktgen(g_kick_frame, g_kick.len, g_nic.mac(), seq, static_cast<uint8_t>(seq),
                             /*ethertype_network=*/true,
                             /*magic_network=*/true);
    if (!g_nic.send_copy(g_kick_frame, g_kick.len)) break;
    if ((n + 1) % 64 == 0) g_nic.flush();
  }
  g_nic.flush();
  ++g_kick.rounds;
  g_kick.sent += n;
  g_kick.last_tsc = guest::rdtsc();
  return n;
}

guest::LnicVerdict on_frame(guest::Lnic& nic, const guest::LnicFrame& f, void* context) {
  Echo& e = *static_cast<Echo*>(context);
  ++e.frames;
  e.bytes += f.len;
  if (e.copy) {
    if (nic.send_copy(f.data, f.len)) {
      ++e.echoed;
    } else {
      ++e.dropped;
    }
    return guest::LnicVerdict::kReturn;
  }
  if (nic.send_page(f.page_gpa, f.seq, f.len, f.t_guest_irq)) {
    ++e.echoed;
    return guest::LnicVerdict::kKeep;  // returned by the driver when the TX completes
  }
  ++e.dropped;
  return guest::LnicVerdict::kReturn;
}

// One loop for both modes. irq: HLT between interrupts (TSC read only when the
// 10 ms tick moved), but spin with interrupts open while TX frames are in
// flight, since TX completions raise no interrupt and their pages should go
// back promptly. poll: interrupts off, TSC read every 16th pass.
const char* run(const lnic_app::RunLimits& lim, bool poll, uint32_t batch) {
  if (!poll) guest::tick_start(guest::kTickVector, 10);
  lnic_app::RunClock clock(lim);
  uint64_t last_tick = guest::tick_count();
  const char* why = nullptr;
  for (uint32_t iter = 1;; ++iter) {
    guest::cli();
    if (poll || g_nic.rx_backlog()) g_nic.poll(batch);
    g_nic.service();  // reclaim finished TX (returns their pages), ring doorbells
    if (clock.frames_done(g_echo.frames)) {
      why = "frames";
      break;
    }
    const bool look = poll ? iter % 16 == 0 : guest::tick_count() != last_tick;
    if (look) {
      last_tick = guest::tick_count();
      if ((why = clock.check(g_echo.frames)) != nullptr) break;
      if (g_kick.count != 0 && g_echo.frames == 0 && g_kick.retry_ms != 0 &&
          guest::rdtsc() - g_kick.last_tsc >= g_kick.retry_ms * guest::tsc_khz()) {
        kick_round();
      }
    }
    if (poll) {
      guest::pause();
    } else if (g_nic.tx_in_flight() != 0) {
      guest::sti();
      for (int i = 0; i < 16; ++i) guest::pause();
    } else {
      guest::sti_hlt();
    }
  }
  if (!poll) guest::tick_stop();
  return why;
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::Cmdline args = guest::Cmdline::from_boot_info(info);
  lnic_app::StreamArgs stream;
  if (!lnic_app::stream_args(kWho, args, &stream)) return guest::kExitFail;
  g_kick.count = args.u64("kick", 0);
  g_kick.len = static_cast<uint32_t>(args.u64("kick_len", 256));
  g_kick.retry_ms = args.u64("kick_retry_ms", 500);
  const uint64_t kick = g_kick.count;
  const uint32_t kick_len = g_kick.len;
  g_echo.copy = args.flag("copy", false);
  const guest::LnicOptions opts = lnic_app::driver_options(args, stream.poll);
  if (!lnic_app::check_args(kWho, args, kKeys)) return guest::kExitFail;
  if (kick_len < sizeof(lnic_pktgen_header) || kick_len > LNIC_FRAME_MAX) {
    guest::printf("%s: FAIL: kick_len %u not in %zu..%u\n", kWho, kick_len,
                  sizeof(lnic_pktgen_header), LNIC_FRAME_MAX);
    return guest::kExitFail;
  }
  if (!lnic_app::start(kWho, g_nic, info, args, opts, on_frame, &g_echo)) return guest::kExitFail;
  guest::printf("%s: mode=%s tx=%s kick=%lu frames=%lu idle_ms=%lu wait_ms=%lu seconds=%lu\n", kWho,
                stream.poll ? "poll" : "irq (hlt between interrupts)",
                g_echo.copy ? "copy" : "zero-copy from the RX page", kick, stream.limits.frames,
                stream.limits.idle_ms, stream.limits.wait_ms, stream.limits.seconds);

  if (g_kick.count != 0) {
    const uint64_t n = kick_round();
    guest::printf(
        "%s: kicked %lu/%lu frames of %u bytes (again every %lu ms until one comes "
        "back)\n",
        kWho, n, g_kick.count, g_kick.len, g_kick.retry_ms);
  }

  const uint64_t t0 = guest::rdtsc();
  const char* why = run(stream.limits, stream.poll, stream.batch);
  const uint64_t elapsed_us = guest::tsc_to_us(guest::rdtsc() - t0);

  // Let the last echoes complete so their pages go back.
  const uint64_t drain = guest::tsc_deadline_ms(1000);
  while (g_nic.tx_in_flight() != 0 && !guest::tsc_passed(drain)) {
    g_nic.service();
    guest::pause();
  }
  g_nic.service();

  const Echo& e = g_echo;
  const guest::LnicStats& st = g_nic.stats();
  const uint64_t faults = st.device_faults();
  const uint64_t stuck = g_nic.tx_in_flight();
  g_nic.print_stats(kWho);
  guest::printf(
      "%s: stopped (%s) after %lu us: frames=%lu echoed=%lu tx_dropped=%lu "
      "tx_completed=%lu still_in_flight=%lu pages_held=%lu device_faults=%lu "
      "kick_rounds=%lu kicked=%lu\n",
      kWho, why, elapsed_us, e.frames, e.echoed, e.dropped, st.tx_completed, stuck,
      g_nic.pages_held(), faults, g_kick.rounds, g_kick.sent);
  if (e.frames == 0) guest::printf("%s: FAIL: no frames received\n", kWho);
  if (stuck != 0) guest::printf("%s: FAIL: %lu TX frames never completed\n", kWho, stuck);
  const uint64_t errors = faults + e.dropped + stuck;
  guest::printf("%s: frames=%lu bytes=%lu echoed=%lu tx_dropped=%lu errors=%lu\n", kWho, e.frames,
                e.bytes, e.echoed, e.dropped, errors);
  return e.frames != 0 && errors == 0 ? guest::kExitPass : guest::kExitFail;
}
