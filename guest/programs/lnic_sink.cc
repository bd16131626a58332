// lnic_sink: receives generated traffic (pktgen backend) and checks it.
//
// Every frame's pktgen header (ethertype, magic) and payload pattern are
// verified; pktgen sequence numbers must increase (a jump forward = frames the
// device dropped, counted as gaps, not an error; a step back = out of order, an
// error). Every page goes back through the RETURN ring.
//
// Command line (key=value, all optional):
//   mode=irq|poll   irq: sleep in HLT between interrupts (default); poll: NO_IRQ,
//                   poll the RX ring in batches with interrupts off
//   frames=N        stop after N frames (0 = no limit, default)
//   idle_ms=N       stop when no frame arrived for N ms (default 2000)
//   wait_ms=N       ... or when the first frame has not arrived after N ms (default 10000)
//   seconds=N       stop after N s regardless (0 = no limit, default)
//   batch=N         poll mode: completions per poll (default 64)
//   verify=0|1      check pktgen header and pattern (default 1)
//   + driver keys (lnic_common.h): nic rx ret tx tx_buffers ret_batch budget log
//
// Output ends with a machine-readable line
//   lnic_sink: frames=N bytes=B gaps=G errors=E
// Exit 0 if frames > 0 and errors == 0 (errors = pattern/header errors +
// out-of-order frames + device faults the driver detected); 1 otherwise.
#include "guest/programs/lnic_common.h"
#include "guest/runtime/tick.h"

namespace {

constexpr const char* kWho = "lnic_sink";
constexpr const char* kKeys[] = {"mode", "frames", "idle_ms", "wait_ms", "seconds", "batch",
                                 "verify"};
constexpr uint32_t kPrintErrors = 5;

struct Sink {
  bool verify = true;
  uint64_t frames = 0;
  uint64_t bytes = 0;
  uint64_t pattern_errors = 0;
  uint64_t network_order = 0;  // frames whose ethertype/magic were big-endian
  uint64_t host_order = 0;
  uint64_t first_seq = 0;
  guest::lnic::SeqTracker seq;
};

constinit Sink g_sink;
constinit guest::Lnic g_nic;

guest::LnicVerdict on_frame(guest::Lnic&, const guest::LnicFrame& f, void* context) {
  Sink& s = *static_cast<Sink*>(context);
  ++s.frames;
  s.bytes += f.len;
  if (s.verify) {
    const guest::lnic::PktgenResult r = guest::lnic::check_pktgen(f.data, f.len);
    if (r.status != guest::lnic::PktgenStatus::kOk) {
      if (++s.pattern_errors <= kPrintErrors) {
        guest::printf("%s: ERROR: frame %lu (completion seq %lu, len %u, page 0x%lx): %s%s",
                      kWho, s.frames - 1, f.seq, f.len, f.page_gpa, guest::lnic::to_string(r.status),
                      r.status == guest::lnic::PktgenStatus::kBadPattern ? "" : "\n");
        if (r.status == guest::lnic::PktgenStatus::kBadPattern) {
          guest::printf(" at offset %u (byte 0x%02x, pattern 0x%02x)\n", r.bad_offset,
                        f.data[r.bad_offset], r.pattern);
        }
      }
    } else {
      if (s.seq.seen == 0) s.first_seq = r.seq;
      ++(r.network_order ? s.network_order : s.host_order);
      if (!s.seq.observe(r.seq) && s.seq.out_of_order <= kPrintErrors) {
        guest::printf("%s: ERROR: pktgen seq %lu after %lu (out of order)\n", kWho, r.seq,
                      s.seq.next - 1);
      }
    }
  }
  return guest::LnicVerdict::kReturn;
}

struct Limits {
  uint64_t frames, idle_ms, wait_ms, seconds;
};

// Returns why the run ended: "frames", "idle", "no traffic", "time".
const char* run_irq(const Limits& lim) {
  guest::tick_start(guest::kTickVector, 10);
  const uint64_t start = guest::rdtsc();
  uint64_t last_frames = 0, last_change = start;
  const char* why;
  for (;;) {
    guest::cli();
    const uint64_t now = guest::rdtsc();
    if (g_sink.frames != last_frames) {
      last_frames = g_sink.frames;
      last_change = now;
    }
    if (lim.frames != 0 && g_sink.frames >= lim.frames) { why = "frames"; break; }
    if (lim.seconds != 0 && now - start >= lim.seconds * 1000 * guest::tsc_khz()) { why = "time"; break; }
    if (g_sink.frames == 0 && now - start >= lim.wait_ms * guest::tsc_khz()) { why = "no traffic"; break; }
    if (g_sink.frames != 0 && now - last_change >= lim.idle_ms * guest::tsc_khz()) { why = "idle"; break; }
    // Completions left over when a handler run hit its budget (no new MSI
    // comes for them if the device goes quiet).
    if (g_nic.rx_pending()) g_nic.poll();
    g_nic.service();
    guest::sti_hlt();
  }
  guest::tick_stop();
  return why;
}

const char* run_poll(const Limits& lim, uint32_t batch) {
  const uint64_t start = guest::rdtsc();
  uint64_t last_change = start;
  uint64_t empty_polls = 0;
  for (;;) {
    const uint32_t n = g_nic.poll(batch);
    const uint64_t now = guest::rdtsc();
    if (n != 0) {
      last_change = now;
    } else {
      ++empty_polls;
      guest::pause();
    }
    if (lim.frames != 0 && g_sink.frames >= lim.frames) return "frames";
    if (lim.seconds != 0 && now - start >= lim.seconds * 1000 * guest::tsc_khz()) return "time";
    if (g_sink.frames == 0 && now - start >= lim.wait_ms * guest::tsc_khz()) return "no traffic";
    if (g_sink.frames != 0 && now - last_change >= lim.idle_ms * guest::tsc_khz()) return "idle";
  }
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::Cmdline args = guest::Cmdline::from_boot_info(info);
  const char* const kModes[] = {"irq", "poll"};
  const bool poll = args.choice("mode", kModes, 0) == 1;
  const Limits lim{args.u64("frames", 0), args.u64("idle_ms", 2000), args.u64("wait_ms", 10000),
                   args.u64("seconds", 0)};
  const uint32_t batch = static_cast<uint32_t>(args.u64("batch", 64));
  g_sink.verify = args.flag("verify", true);
  const guest::LnicOptions opts = lnic_app::driver_options(args, poll);
  if (!lnic_app::check_args(kWho, args, kKeys)) return guest::kExitFail;
  if (!lnic_app::start(kWho, g_nic, info, args, opts, on_frame, &g_sink)) return guest::kExitFail;
  guest::printf("%s: mode=%s frames=%lu idle_ms=%lu wait_ms=%lu seconds=%lu batch=%u verify=%d\n",
                kWho, poll ? "poll" : "irq (hlt between interrupts)", lim.frames, lim.idle_ms,
                lim.wait_ms, lim.seconds, batch, g_sink.verify ? 1 : 0);

  const uint64_t t0 = guest::rdtsc();
  const char* why = poll ? run_poll(lim, batch) : run_irq(lim);
  const uint64_t elapsed_us = guest::tsc_to_us(guest::rdtsc() - t0);
  g_nic.service();  // give back anything still unannounced

  const Sink& s = g_sink;
  const uint64_t faults = g_nic.stats().device_faults();
  const uint64_t errors = s.pattern_errors + s.seq.out_of_order + faults;
  g_nic.print_stats(kWho);
  guest::printf("%s: stopped (%s) after %lu us: frames=%lu (%lu/s) pattern_errors=%lu "
                "out_of_order=%lu gaps=%lu in %lu jumps, first pktgen seq %lu, byte order %s "
                "(network %lu, host %lu), device faults %lu\n",
                kWho, why, elapsed_us, s.frames,
                elapsed_us != 0 ? s.frames * 1000000 / elapsed_us : 0, s.pattern_errors,
                s.seq.out_of_order, s.seq.gaps, s.seq.gap_events, s.first_seq,
                s.network_order != 0 && s.host_order != 0 ? "MIXED"
                : s.network_order != 0                    ? "network"
                                                          : "host",
                s.network_order, s.host_order, faults);
  if (s.frames == 0) guest::printf("%s: FAIL: no frames received\n", kWho);
  guest::printf("%s: frames=%lu bytes=%lu gaps=%lu errors=%lu\n", kWho, s.frames, s.bytes,
                s.seq.gaps, errors);
  return s.frames != 0 && errors == 0 ? guest::kExitPass : guest::kExitFail;
}
