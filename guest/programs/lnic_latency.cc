// lnic_latency: the guest end of `labyrinth latency`.
//
// Interrupt mode, halted (sti; hlt) between interrupts. The driver's handler
// reads the TSC first thing and returns every page with t_guest_irq = that TSC,
// one RETURN doorbell per handler run; the host computes the guest-observed
// latency from it. Floor interrupts (signalled by `labyrinth latency`'s floor
// phase, or armed by this guest with floor_ms) are answered by the handler
// (floor_guest_tsc = its entry TSC).
//
// Command line (key=value, all optional):
//   seconds=N     stop after N s (default 0: run until the VMM ends the VM, which
//                 is what `labyrinth latency` does; the summary is then not printed)
//   frames=N      ... or after N frames (0 = no limit, default)
//   floor_ms=N    arm a floor (LNIC_REG_FLOOR_ARM) every N ms (default 0 = never:
//                 `labyrinth latency` drives floors itself and arming here would
//                 collide with its floor generator)
//   floor_timeout_ms=N  give up on an armed floor after N ms (default 1000)
//   tick_ms=N     LAPIC tick for deadlines/floors (default 10); no tick at all when
//                 seconds=0 and floor_ms=0, so nothing but lnic MSIs wakes the HLT
//   + driver keys (lnic_common.h); ret_batch=1 (default): one doorbell per interrupt
//
// It also prints guest-side summaries of (handler entry - t_ready),
// (handler entry - t_posted) and of the floors, as raw TSC differences: the
// guest TSC is the host TSC plus the VM's TSC offset, which the guest does not
// know, so these are latencies only if that offset is 0 (checked: negative
// values are counted and reported). The host's figures are authoritative.
//
// Last line: lnic_latency: frames=N floors=F irqs=I errors=E
// Exit 0 if frames or floors were seen and the driver saw no device fault.
#include "guest/programs/lnic_common.h"

namespace {

constexpr const char* kWho = "lnic_latency";
constexpr const char* kKeys[] = {"seconds", "frames", "floor_ms", "floor_timeout_ms", "tick_ms"};

struct Latency {
  uint64_t frames = 0;
  uint64_t polled = 0;  // consumed outside the handler (t_guest_irq = 0)
  uint64_t late = 0;    // posted after the handler run that consumed it had started
  lnic_app::Histogram from_ready;
  lnic_app::Histogram from_posted;
  lnic_app::Histogram floors;
};

constinit Latency g_lat;
constinit guest::Lnic g_nic;

guest::LnicVerdict on_frame(guest::Lnic&, const guest::LnicFrame& f, void* context) {
  Latency& l = *static_cast<Latency*>(context);
  ++l.frames;
  if (f.t_guest_irq == 0) {
    ++l.polled;
  } else if (f.t_guest_irq < f.t_ready || f.t_guest_irq < f.t_posted) {
    // A handler run picks up completions posted while it runs: their t_posted
    // is after its entry TSC. (A nonzero TSC offset would make nearly all
    // deltas negative or huge instead.)
    ++l.late;
  } else {
    l.from_ready.add(f.t_guest_irq - f.t_ready);
    l.from_posted.add(f.t_guest_irq - f.t_posted);
  }
  return guest::LnicVerdict::kReturn;
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::Cmdline args = guest::Cmdline::from_boot_info(info);
  if (!lnic_app::enter_cpl(kWho, args, /*poll=*/false)) return guest::kExitFail;
  const uint64_t seconds = args.u64("seconds", 0);
  const uint64_t max_frames = args.u64("frames", 0);
  const uint64_t floor_ms = args.u64("floor_ms", 0);
  const uint64_t floor_timeout_ms = args.u64("floor_timeout_ms", 1000);
  const uint32_t tick_ms = static_cast<uint32_t>(args.u64("tick_ms", 10));
  const guest::LnicOptions opts = lnic_app::driver_options(args, /*poll=*/false);
  if (!lnic_app::check_args(kWho, args, kKeys)) return guest::kExitFail;
  if (!lnic_app::start(kWho, g_nic, info, args, opts, on_frame, &g_lat)) return guest::kExitFail;
  // The tick only serves deadlines and floor arming; without either the guest
  // sleeps in HLT undisturbed (no timer interrupt can delay an lnic MSI).
  const bool tick = seconds != 0 || floor_ms != 0;
  guest::printf(
      "%s: idle=hlt (sti;hlt between interrupts, %s) seconds=%lu%s frames=%lu "
      "floor_ms=%lu ret_batch=%u\n",
      kWho, tick ? "LAPIC tick for deadlines/floors" : "no timer", seconds,
      seconds == 0 ? " (until the VMM ends the run)" : "", max_frames, floor_ms,
      opts.ret_doorbell_batch);
  if (tick && tick_ms != 0) guest::tick_start(guest::kTickVector, tick_ms);

  const uint64_t khz = guest::tsc_khz();
  const uint64_t start = guest::rdtsc();
  uint64_t last_tick = guest::tick_count();
  uint64_t next_floor = start + floor_ms * khz;
  uint64_t floor_armed_at = 0;
  uint64_t floors_seen = 0, floors_lost = 0, floor_negative = 0;
  const char* why;
  for (;;) {
    guest::cli();
    if (max_frames != 0 && g_lat.frames >= max_frames) {
      why = "frames";
      break;
    }
    // Floors answered by the handler (no clock needed).
    if (g_nic.stats().floor_irqs != floors_seen) {
      floors_seen = g_nic.stats().floor_irqs;
      uint64_t t_sent, guest_tsc;
      if (g_nic.floor_result(&t_sent, &guest_tsc)) {
        if (guest_tsc >= t_sent) {
          g_lat.floors.add(guest_tsc - t_sent);
        } else {
          ++floor_negative;
        }
      }
    }
    // Clock work once per tick only: RDTSC is an exit on the nested host.
    if (guest::tick_count() != last_tick) {
      last_tick = guest::tick_count();
      const uint64_t now = guest::rdtsc();
      if (seconds != 0 && now - start >= seconds * 1000 * khz) {
        why = "time";
        break;
      }
      if (g_nic.floor_pending() && now - floor_armed_at >= floor_timeout_ms * khz) {
        if (++floors_lost <= 3) {
          guest::printf("%s: floor armed %lu ms ago never signalled\n", kWho, floor_timeout_ms);
        }
        g_nic.floor_cancel();
      }
      if (floor_ms != 0 && !g_nic.floor_pending() && static_cast<int64_t>(now - next_floor) >= 0) {
        floor_armed_at = now;
        next_floor = now + floor_ms * khz;
        g_nic.floor_arm();
      }
    }
    // Only what a budget-limited handler run left behind: anything else pending
    // here has its MSI on the way, and the handler must see it (polled frames
    // carry no t_guest_irq and are lost to the latency figures).
    if (g_nic.rx_backlog()) g_nic.poll();
    g_nic.service();
    guest::sti_hlt();
  }
  if (tick) guest::tick_stop();
  g_nic.service();

  const Latency& l = g_lat;
  const guest::LnicStats& st = g_nic.stats();
  const uint64_t faults = st.device_faults();
  g_nic.print_stats(kWho);
  guest::printf(
      "%s: stopped (%s): frames=%lu (in handler %lu, polled %lu) irqs=%lu "
      "floors armed=%lu seen=%lu lost=%lu\n",
      kWho, why, l.frames, l.frames - l.polled, l.polled, st.irqs, st.floor_armed, st.floor_irqs,
      floors_lost);
  guest::printf(
      "%s: raw guest-TSC minus host-TSC deltas (latencies only if the VM's TSC offset "
      "is 0; the host's figures are authoritative): %lu frames were posted after the "
      "handler run that consumed them began (excluded), %lu floors negative\n",
      kWho, l.late, floor_negative);
  lnic_app::print_histogram_ns(kWho, "irq entry - t_ready ", l.from_ready);
  lnic_app::print_histogram_ns(kWho, "irq entry - t_posted", l.from_posted);
  lnic_app::print_histogram_ns(kWho, "floor: entry - t_sent", l.floors);
  const bool any = l.frames != 0 || st.floor_irqs != 0;
  if (!any) guest::printf("%s: FAIL: neither frames nor floor interrupts arrived\n", kWho);
  guest::printf("%s: frames=%lu floors=%lu irqs=%lu errors=%lu\n", kWho, l.frames, st.floor_irqs,
                st.irqs, faults);
  return any && faults == 0 ? guest::kExitPass : guest::kExitFail;
}
