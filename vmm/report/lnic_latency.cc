#include "vmm/report/lnic_latency.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "allocator/measure/tsc.h"

namespace labyrinth::vmm {

std::string_view guest_kind_name(LatencyGuestKind kind) {
  return kind == LatencyGuestKind::linux_kernel ? "linux" : "freestanding";
}

std::string guest_kind_note(LatencyGuestKind kind) {
  return kind == LatencyGuestKind::linux_kernel
             ? "Linux (lnic.ko): its MSI-X handler stamps after the kernel's interrupt entry "
               "and IRQ dispatch"
             : "freestanding (Labyrinth test guest): its IDT handler stamps first thing";
}

TscVerdict assess_tsc(const LnicLatencyRun& run) {
  const devices::lnic::LnicMetrics& m = *run.nic.metrics;
  const devices::lnic::LnicLatency& lat = *run.nic.latency;
  TscVerdict v;
  // KVM's TSC catch-up mode (hosts whose TSC it deems unstable, such as QEMU TCG) moves
  // the offset while the guest runs: guest stamps then carry that error.
  v.drift_us = measure::TscClock::instance().to_ns(
                   static_cast<uint64_t>(std::llabs(run.tsc_end.offset - run.tsc_start.offset))) /
               1000.0;
  // Stamps that map to before the event they answer: the offset was off while they
  // were taken, even when it is back where it started by the end (KVM's catch-up moves
  // the guest TSC behind and forward again while the vCPU thread waits for a CPU).
  v.early = m.guest_stamp_early.get() + m.floor_early.get();
  v.stamps = v.early + lat.guest.count() + lat.floor.count();
  // Stable: KVM's attribute agreed with the measured pair at the start, the offset
  // moved by at most 10 us over the run (under QEMU TCG KVM rewrites it at every vCPU
  // load, and the guest and floor spans then carry that error) and at most 1% of the
  // guest's stamps were early.
  v.stable = run.tsc_start.from_attribute && v.drift_us <= 10 && v.early * 100 <= v.stamps;
  return v;
}

std::string lnic_report_title(const std::string& id, const LnicBackendSummary& backend) {
  return "lnic " + id + ": " +
         (backend.pktgen ? std::to_string(static_cast<long>(backend.rate_pps)) + " pps pktgen, " +
                               std::to_string(backend.frame_size) + "-byte frames"
                         : backend.name + " backend");
}

double lnic_floor_rate_hz(double requested, const LnicBackendSummary& backend) {
  if (requested > 0) return requested;
  return backend.pktgen ? backend.rate_pps : 1000.0;
}

std::string lnic_not_ready_message(const std::string& id, bool enabled) {
  return "the guest did not " +
         std::string(enabled ? "answer an interrupt from lnic " : "enable lnic ") + id + " in time";
}

LatencyReport lnic_latency_report(const LnicLatencyRun& run) {
  const devices::lnic::LnicMetrics& m = *run.nic.metrics;
  const devices::lnic::LnicLatency& lat = *run.nic.latency;
  LatencyReport r(lnic_report_title(run.nic.id, run.nic.backend));
  r.note("host", run.host);
  const TscOffsetReading& tsc = run.tsc_start;
  r.note("guest TSC offset",
         std::to_string(tsc.offset) + " ticks (" +
             (tsc.from_attribute ? "KVM_VCPU_TSC_OFFSET, matches the measured pair"
                                 : "measured guest/host TSC pair, +-" +
                                       std::to_string(tsc.uncertainty) + " ticks") +
             ")");
  const TscVerdict v = assess_tsc(run);
  {
    char drift[192];
    (void)std::snprintf(
        drift, sizeof drift, "%.1f us over the run, %lu of %lu guest stamps early%s", v.drift_us,
        static_cast<unsigned long>(v.early), static_cast<unsigned long>(v.stamps),
        v.stable ? "" : " (offset unstable: guest and floor spans carry its error)");
    r.note("guest TSC offset drift", drift);
  }
  r.note("guest kind", guest_kind_note(run.guest_kind));
  r.note("guest", run.guest);
  // Observed: KVM's count of the HLTs vCPU 0 executed while the run measured.
  r.note("guest idle mode", idle_mode_note(run.halts));
  r.note("duration", std::to_string(run.seconds) + " s: first half floor, second half device path");
  {
    char warmup[160];
    (void)std::snprintf(warmup, sizeof warmup,
                        "%.0f ms from the guest enabling %s to its answer to a first "
                        "interrupt; measured from then on",
                        run.warmup_s * 1000, run.nic.id.c_str());
    r.note("warm-up", warmup);
  }
  r.add(
      "alloc",
      alloc_span_description(run.nic.alloc_timer_ticks, m.alloc_net_zero.get(), lat.alloc.count()),
      lat.alloc, m.rx_drop_no_page.get());
  r.add("host_rx", "frame ready (scheduled) -> completion posted and MSI irqfd signalled",
        lat.host_rx, m.rx_drops());
  r.add("guest", "frame ready (scheduled) -> guest interrupt handler entry (guest TSC)", lat.guest,
        m.rx_drops());
  r.add("floor", "irqfd signalled at its scheduled time -> guest handler entry, no device work",
        lat.floor, m.floor_missed.get() + m.floor_early.get());
  // A floor is sent only when the guest has answered the previous one: a guest (or a
  // host) slower than the floor rate answers few of them, and the report says so.
  const uint64_t floor_ticks = m.floor_sent.get() + m.floor_missed.get();
  if (m.floor_missed.get() * 2 > floor_ticks) {
    char thin[224];
    (void)std::snprintf(thin, sizeof thin,
                        "%lu of %lu floor ticks sent, %lu skipped because the guest had not "
                        "answered the previous floor: the host is slower than the floor rate",
                        static_cast<unsigned long>(m.floor_sent.get()),
                        static_cast<unsigned long>(floor_ticks),
                        static_cast<unsigned long>(m.floor_missed.get()));
    r.note("floor samples", thin);
  }
  // Ratios of ticks: meaningful even where the absolute figures are not (TCG).
  const double floor50 = static_cast<double>(lat.floor.percentile(50));
  const double floor99 = static_cast<double>(lat.floor.percentile(99));
  char buf[160];
  if (floor50 > 0 && lat.guest.count() > 0) {
    (void)std::snprintf(
        buf, sizeof buf, "p50 %.2fx, p99 %.2fx",
        static_cast<double>(lat.guest.percentile(50)) / floor50,
        floor99 > 0 ? static_cast<double>(lat.guest.percentile(99)) / floor99 : 0.0);
    r.note("device path / floor", buf);
  }
  if (lat.host_rx.count() > 0) {
    (void)std::snprintf(buf, sizeof buf, "%.2f%% at p50",
                        100.0 * static_cast<double>(lat.alloc.percentile(50)) /
                            static_cast<double>(std::max<uint64_t>(lat.host_rx.percentile(50), 1)));
    r.note("allocation share of host_rx", buf);
  }
  return r;
}

std::string lnic_latency_summary(const LnicLatencyRun& run) {
  const devices::lnic::LnicMetrics& m = *run.nic.metrics;
  std::ostringstream o;
  o << "rx_frames " << m.rx_frames.get() << ", drops " << m.rx_drops() << ", violations "
    << m.violations() << ", pages with guest " << run.nic.pages_with_guest
    << ", early guest stamps " << m.guest_stamp_early.get() << ", floors sent "
    << m.floor_sent.get() << " (missed " << m.floor_missed.get() << ", early "
    << m.floor_early.get() << ")\n";
  return o.str();
}

boost::json::object lnic_latency_json(const LatencyReport& report, const LnicLatencyRun& run,
                                      boost::json::object metrics) {
  const TscVerdict v = assess_tsc(run);
  auto j = report.json();
  j["metrics"] = std::move(metrics);
  j["tsc_offset_drift_us"] = v.drift_us;
  j["tsc_offset_stable"] = v.stable;
  j["guest_kind"] = guest_kind_name(run.guest_kind);
  j["guest_idle_mode"] = idle_mode_word(run.halts);
  // vCPU 0 takes the NIC's interrupts; without KVM statistics the keys are left out.
  if (run.halts) {
    j["vcpu0_halt_exits"] = run.halts->halt_exits;
    if (run.halts->has_wait) j["vcpu0_halt_wait_ns"] = run.halts->halt_wait_ns;
  }
  return j;
}

std::string idle_mode_note(const std::optional<HaltObservation>& seen) {
  if (!seen) {
    return "not observed: KVM offers no per-vCPU statistics here (KVM_GET_STATS_FD with "
           "halt_exits, Linux 5.14+); see the guest's own output";
  }
  char buf[256];
  const std::string source =
      seen->has_wait ? "KVM statistics halt_exits, halt_wait_ns" : "KVM statistic halt_exits";
  if (seen->halt_exits == 0) {
    (void)std::snprintf(buf, sizeof buf,
                        "never halted: vCPU %u executed no HLT in the measured %.1f s (%s): it "
                        "polled or spun between interrupts",
                        seen->vcpu, seen->seconds, source.c_str());
    return buf;
  }
  char blocked[64] = "";
  // halt_wait_ns / (seconds * 1e9) as a percentage: ns / 1e7 / s.
  if (seen->has_wait && seen->seconds > 0) {
    (void)std::snprintf(
        blocked, sizeof blocked, ", blocked in it %.0f%% of the time",
        std::min(100.0, static_cast<double>(seen->halt_wait_ns) / 1e7 / seen->seconds));
  }
  (void)std::snprintf(buf, sizeof buf,
                      "halted: vCPU %u executed HLT %llu times in the measured %.1f s%s (%s)",
                      seen->vcpu, static_cast<unsigned long long>(seen->halt_exits), seen->seconds,
                      blocked, source.c_str());
  return buf;
}

std::string_view idle_mode_word(const std::optional<HaltObservation>& seen) {
  if (!seen) return "not observed";
  return seen->halt_exits == 0 ? "never halted" : "halted";
}

std::string alloc_span_description(uint64_t timer_ticks, uint64_t net_zero, uint64_t samples) {
  char buf[320];
  (void)std::snprintf(buf, sizeof buf,
                      "alloc_page(atomic|exclusive) call on the RX path, net of the rdtsc "
                      "pair's own cost (%llu ticks, %.0f ns, calibrated at start); samples at "
                      "or below it count as 0 (%llu of %llu)",
                      static_cast<unsigned long long>(timer_ticks),
                      measure::TscClock::instance().to_ns(timer_ticks),
                      static_cast<unsigned long long>(net_zero),
                      static_cast<unsigned long long>(samples));
  return buf;
}

}  // namespace labyrinth::vmm
