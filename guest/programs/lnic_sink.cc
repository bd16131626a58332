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
//   verify=full|header|none   check the pktgen header, sequence numbers and
//                   payload pattern (full, default; also "1"), skip the payload
//                   (header), or check nothing (none, "0")
//   shutdown=0|1    1: end with the driver's clean unload (RX_STOP, drain, RESET) and
//                   report the pages the device still counts as held (must be 0)
//   + driver keys (lnic_common.h): nic rx ret tx tx_buffers ret_batch budget log
//
// Output ends with a machine-readable line
//   lnic_sink: frames=N bytes=B gaps=G errors=E
// Exit 0 if frames > 0 and errors == 0 (errors = pattern/header errors +
// out-of-order frames + device faults the driver detected); 1 otherwise.
#include "guest/drivers/lnic/lnic_raw.h"
#include "guest/programs/lnic_common.h"

namespace {

constexpr const char* kWho = "lnic_sink";
constexpr const char* kKeys[] = {"mode",    "frames", "idle_ms", "wait_ms",
                                 "seconds", "batch",  "verify",  "shutdown"};
constexpr uint32_t kPrintErrors = 5;

struct Sink {
  bool verify = true;          // pktgen header and sequence numbers
  bool verify_payload = true;  // ... and the payload pattern
  uint64_t frames = 0;
  uint64_t bytes = 0;
  uint64_t pattern_errors = 0;
  uint64_t ethertype_network = 0;  // frames whose ethertype was big-endian (else little)
  uint64_t magic_network = 0;      // frames whose magic was big-endian (else little)
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
    const guest::lnic::PktgenResult r =
        guest::lnic::check_pktgen(f.data, s.verify_payload || f.len < sizeof(lnic_pktgen_header)
                                              ? f.len
                                              : sizeof(lnic_pktgen_header));
    if (r.status != guest::lnic::PktgenStatus::kOk) {
      if (++s.pattern_errors <= kPrintErrors) {
        guest::printf("%s: ERROR: frame %lu (completion seq %lu, len %u, page 0x%lx): %s%s", kWho,
                      s.frames - 1, f.seq, f.len, f.page_gpa, guest::lnic::to_string(r.status),
                      r.status == guest::lnic::PktgenStatus::kBadPattern ? "" : "\n");
        if (r.status == guest::lnic::PktgenStatus::kBadPattern) {
          guest::printf(" at offset %u (byte 0x%02x, pattern 0x%02x)\n", r.bad_offset,
                        f.data[r.bad_offset], r.pattern);
        }
      }
    } else {
      if (s.seq.seen == 0) s.first_seq = r.seq;
      s.ethertype_network += r.ethertype_network;
      s.magic_network += r.magic_network;
      if (!s.seq.observe(r.seq) && s.seq.out_of_order <= kPrintErrors) {
        guest::printf("%s: ERROR: pktgen seq %lu after %lu (out of order)\n", kWho, r.seq,
                      s.seq.next - 1);
      }
    }
  }
  return guest::LnicVerdict::kReturn;
}

// irq mode: sleep in HLT; the LAPIC tick (10 ms) bounds how late a deadline is
// noticed, and the TSC is read only when the tick count moved.
const char* run_irq(const lnic_app::RunLimits& lim) {
  guest::tick_start(guest::kTickVector, 10);
  lnic_app::RunClock clock(lim);
  uint64_t last_tick = guest::tick_count();
  const char* why = nullptr;
  for (;;) {
    guest::cli();
    if (clock.frames_done(g_sink.frames)) {
      why = "frames";
      break;
    }
    if (guest::tick_count() != last_tick) {
      last_tick = guest::tick_count();
      if ((why = clock.check(g_sink.frames)) != nullptr) break;
    }
    // Completions left over when a handler run hit its budget (no new MSI
    // comes for them if the device goes quiet).
    if (g_nic.rx_backlog()) g_nic.poll();
    g_nic.service();
    guest::sti_hlt();
  }
  guest::tick_stop();
  return why;
}

// poll mode: interrupts stay off; the TSC is read every 16th poll or after 8
// empty polls in a row.
const char* run_poll(const lnic_app::RunLimits& lim, uint32_t batch) {
  lnic_app::RunClock clock(lim);
  uint32_t empty = 0;
  for (uint32_t iter = 1;; ++iter) {
    const uint32_t n = g_nic.poll(batch);
    if (clock.frames_done(g_sink.frames)) return "frames";
    if (n == 0) {
      guest::pause();
      ++empty;
    } else {
      empty = 0;
    }
    if (iter % 16 == 0 || empty >= 8) {
      empty = 0;
      if (const char* why = clock.check(g_sink.frames)) return why;
    }
  }
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::Cmdline args = guest::Cmdline::from_boot_info(info);
  const char* const kVerify[] = {"full", "header", "none", "1", "0"};  // verify= below
  lnic_app::StreamArgs stream;
  if (!lnic_app::stream_args(kWho, args, &stream)) return guest::kExitFail;
  const size_t verify = args.choice("verify", kVerify, 0);
  g_sink.verify = verify == 0 || verify == 1 || verify == 3;
  g_sink.verify_payload = verify == 0 || verify == 3;
  const bool shutdown = args.u64("shutdown", 0) != 0;
  const guest::LnicOptions opts = lnic_app::driver_options(args, stream.poll);
  if (!lnic_app::check_args(kWho, args, kKeys)) return guest::kExitFail;
  if (!lnic_app::start(kWho, g_nic, info, args, opts, on_frame, &g_sink)) return guest::kExitFail;
  guest::printf("%s: mode=%s frames=%lu idle_ms=%lu wait_ms=%lu seconds=%lu batch=%u verify=%s\n",
                kWho, stream.poll ? "poll" : "irq (hlt between interrupts)", stream.limits.frames,
                stream.limits.idle_ms, stream.limits.wait_ms, stream.limits.seconds, stream.batch,
                !g_sink.verify          ? "none"
                : g_sink.verify_payload ? "full"
                                        : "header");

  const uint64_t t0 = guest::rdtsc();
  const char* why = stream.poll ? run_poll(stream.limits, stream.batch) : run_irq(stream.limits);
  const uint64_t elapsed_us = guest::tsc_to_us(guest::rdtsc() - t0);
  g_nic.service();  // give back anything still unannounced
  // The unload path: frames still arriving are stopped at the device, the last ones
  // consumed (and verified) and every page handed back before the reset.
  uint64_t held_after = 0;
  if (shutdown) {
    guest::cli();
    const bool clean = g_nic.shutdown();
    held_after = guest::LnicRaw(g_nic).reg_read(LNIC_REG_PAGES_HELD);
    guest::printf("%s: shutdown %s: device PAGES_HELD=%lu, driver holds %lu, STATUS 0x%x\n", kWho,
                  clean ? "clean" : "FAILED", held_after, g_nic.pages_held(), g_nic.status());
    if (!clean) ++held_after;
  }

  const Sink& s = g_sink;
  const uint64_t faults = g_nic.stats().device_faults();
  const uint64_t errors = s.pattern_errors + s.seq.out_of_order + faults + held_after;
  g_nic.print_stats(kWho);
  const uint64_t good = s.seq.seen;  // frames whose header checked out
  const auto order = [good](uint64_t network) {
    return network == good ? "network" : network == 0 ? "host (little-endian)" : "MIXED";
  };
  guest::printf(
      "%s: stopped (%s) after %lu us: frames=%lu (%lu/s) pattern_errors=%lu "
      "out_of_order=%lu gaps=%lu in %lu jumps, first pktgen seq %lu, device faults %lu\n",
      kWho, why, elapsed_us, s.frames, elapsed_us != 0 ? s.frames * 1000000 / elapsed_us : 0,
      s.pattern_errors, s.seq.out_of_order, s.seq.gaps, s.seq.gap_events, s.first_seq, faults);
  if (good != 0) {
    guest::printf("%s: pktgen header byte order: ethertype %s, magic %s\n", kWho,
                  order(s.ethertype_network), order(s.magic_network));
  }
  if (s.frames == 0) guest::printf("%s: FAIL: no frames received\n", kWho);
  guest::printf("%s: frames=%lu bytes=%lu gaps=%lu errors=%lu\n", kWho, s.frames, s.bytes,
                s.seq.gaps, errors);
  return s.frames != 0 && errors == 0 ? guest::kExitPass : guest::kExitFail;
}
