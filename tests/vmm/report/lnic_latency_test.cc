// The lnic latency report, from plain inputs: its title, notes, summary line and JSON
// say exactly what was measured and how far the guest's TSC stamps can be trusted.
#include "vmm/report/lnic_latency.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace labyrinth::vmm {
namespace {

// One lnic's counters and histograms as a run might leave them; values that a TSC
// calibration would turn into microseconds are kept out of the exact comparisons.
struct Fixture {
  devices::lnic::LnicMetrics m;
  devices::lnic::LnicLatency lat;

  LnicLatencyRun run() const {
    return LnicLatencyRun{
        .nic =
            LnicReading{
                .id = "lnic0",
                .backend = {.name = "pktgen", .pktgen = true, .rate_pps = 1000, .frame_size = 64},
                .metrics = &m,
                .latency = &lat,
                .alloc_timer_ticks = 0,
                .pages_with_guest = 2},
        .host = "bare KVM (kvm_intel)",
        .guest = "build/guest/lnic_latency.elf quiet",
        .seconds = 2,
        .warmup_s = 0.25,
        .tsc_start = {.offset = -12345, .from_attribute = true, .uncertainty = 7},
        .tsc_end = {.offset = -12345, .from_attribute = true, .uncertainty = 7},
        .halts = HaltObservation{.vcpu = 0, .seconds = 1.0, .halt_exits = 0}};
  }
};

// The notes block: the lines between the title and the span table's header.
std::string notes_of(const std::string& table) {
  const size_t from = table.find('\n') + 1;
  return table.substr(from, table.find("span (us)") - from);
}

TEST(LnicLatencyReport, TitleNamesTheGeneratorOrTheBackend) {
  EXPECT_EQ(
      lnic_report_title("lnic0",
                        {.name = "pktgen", .pktgen = true, .rate_pps = 10000.7, .frame_size = 128}),
      "lnic lnic0: 10000 pps pktgen, 128-byte frames");
  EXPECT_EQ(lnic_report_title("a", {.name = "loopback"}), "lnic a: loopback backend");
}

TEST(LnicLatencyReport, FloorRateIsAskedElseTheGeneratorsElse1000Hz) {
  const LnicBackendSummary gen{.name = "pktgen", .pktgen = true, .rate_pps = 2500};
  EXPECT_EQ(lnic_floor_rate_hz(300, gen), 300);
  EXPECT_EQ(lnic_floor_rate_hz(0, gen), 2500);
  EXPECT_EQ(lnic_floor_rate_hz(0, {.name = "udp"}), 1000);
}

TEST(LnicLatencyReport, NotReadySaysWhichStepTheGuestMissed) {
  EXPECT_EQ(lnic_not_ready_message("lnic0", false), "the guest did not enable lnic lnic0 in time");
  EXPECT_EQ(lnic_not_ready_message("lnic0", true),
            "the guest did not answer an interrupt from lnic lnic0 in time");
}

TEST(LnicLatencyReport, NotesOfAStableRun) {
  Fixture f;
  f.m.guest_stamp_early.inc(1);
  f.m.floor_sent.inc(100);
  f.lat.alloc.record_n(10, 100);
  f.lat.host_rx.record_n(40, 100);
  f.lat.guest.record_n(100, 100);
  f.lat.floor.record_n(50, 100);
  const std::string t = lnic_latency_report(f.run()).table();
  EXPECT_EQ(t.substr(0, t.find('\n')), "lnic lnic0: 1000 pps pktgen, 64-byte frames");
  EXPECT_EQ(notes_of(t),
            "  host: bare KVM (kvm_intel)\n"
            "  guest TSC offset: -12345 ticks (KVM_VCPU_TSC_OFFSET, matches the measured pair)\n"
            "  guest TSC offset drift: 0.0 us over the run, 1 of 201 guest stamps early\n"
            "  guest kind: freestanding (Labyrinth test guest): its IDT handler stamps first "
            "thing\n"
            "  guest: build/guest/lnic_latency.elf quiet\n"
            "  guest idle mode: never halted: vCPU 0 executed no HLT in the measured 1.0 s "
            "(KVM statistic halt_exits): it polled or spun between interrupts\n"
            "  duration: 2.000000 s: first half floor, second half device path\n"
            "  warm-up: 250 ms from the guest enabling lnic0 to its answer to a first "
            "interrupt; measured from then on\n"
            "  device path / floor: p50 2.00x, p99 2.00x\n"
            "  allocation share of host_rx: 25.00% at p50\n");
  EXPECT_NE(t.find("\n  alloc: alloc_page(atomic|exclusive) call on the RX path, net of the rdtsc "
                   "pair's own cost (0 ticks, 0 ns, calibrated at start); samples at or below it "
                   "count as 0 (0 of 100)\n"
                   "  host_rx: frame ready (scheduled) -> completion posted and MSI irqfd "
                   "signalled\n"
                   "  guest: frame ready (scheduled) -> guest interrupt handler entry (guest TSC)\n"
                   "  floor: irqfd signalled at its scheduled time -> guest handler entry, no "
                   "device work\n"),
            std::string::npos)
      << t;
}

TEST(LnicLatencyReport, NotesOfAnUnstableRunWithFewFloors) {
  Fixture f;
  f.m.floor_sent.inc(10);
  f.m.floor_missed.inc(30);
  LnicLatencyRun run = f.run();
  run.nic.backend = {.name = "loopback"};
  run.tsc_start = {.offset = 500, .from_attribute = false, .uncertainty = 30};
  run.tsc_end = run.tsc_start;
  run.halts = std::nullopt;
  const std::string t = lnic_latency_report(run).table();
  EXPECT_EQ(t.substr(0, t.find('\n')), "lnic lnic0: loopback backend");
  EXPECT_EQ(notes_of(t),
            "  host: bare KVM (kvm_intel)\n"
            "  guest TSC offset: 500 ticks (measured guest/host TSC pair, +-30 ticks)\n"
            "  guest TSC offset drift: 0.0 us over the run, 0 of 0 guest stamps early (offset "
            "unstable: guest and floor spans carry its error)\n"
            "  guest kind: freestanding (Labyrinth test guest): its IDT handler stamps first "
            "thing\n"
            "  guest: build/guest/lnic_latency.elf quiet\n"
            "  guest idle mode: not observed: KVM offers no per-vCPU statistics here "
            "(KVM_GET_STATS_FD with halt_exits, Linux 5.14+); see the guest's own output\n"
            "  duration: 2.000000 s: first half floor, second half device path\n"
            "  warm-up: 250 ms from the guest enabling lnic0 to its answer to a first "
            "interrupt; measured from then on\n"
            "  floor samples: 10 of 40 floor ticks sent, 30 skipped because the guest had not "
            "answered the previous floor: the host is slower than the floor rate\n");
}

TEST(LnicLatencyReport, TscVerdict) {
  Fixture f;
  f.m.guest_stamp_early.inc(2);
  f.m.floor_early.inc(1);
  f.lat.guest.record_n(100, 150);
  f.lat.floor.record_n(50, 150);
  LnicLatencyRun run = f.run();
  TscVerdict v = assess_tsc(run);
  EXPECT_EQ(v.early, 3u);
  EXPECT_EQ(v.stamps, 303u);
  EXPECT_EQ(v.drift_us, 0.0);
  EXPECT_TRUE(v.stable);
  f.m.guest_stamp_early.inc(2);  // 5 of 305: more than 1% early
  EXPECT_FALSE(assess_tsc(run).stable);
  f.m.guest_stamp_early.v = 0;
  run.tsc_end.offset += 1'000'000'000;  // a billion ticks: far more than 10 us on any TSC
  v = assess_tsc(run);
  EXPECT_GT(v.drift_us, 10.0);
  EXPECT_FALSE(v.stable);
}

TEST(LnicLatencyReport, SummaryLine) {
  Fixture f;
  f.m.rx_frames.inc(5);
  f.m.rx_drop_no_page.inc(2);
  f.m.rx_drop_ring_full.inc(1);
  f.m.viol_stale.inc(1);
  f.m.guest_stamp_early.inc(1);
  f.m.floor_sent.inc(100);
  f.m.floor_missed.inc(4);
  f.m.floor_early.inc(6);
  EXPECT_EQ(lnic_latency_summary(f.run()),
            "rx_frames 5, drops 3, violations 1, pages with guest 2, early guest stamps 1, "
            "floors sent 100 (missed 4, early 6)\n");
}

TEST(LnicLatencyReport, JsonCarriesTheMetricsAndTheVerdictAfterTheReport) {
  Fixture f;
  LnicLatencyRun run = f.run();
  run.halts = HaltObservation{.halt_exits = 77, .halt_wait_ns = 5000, .has_wait = true};
  const LatencyReport r = lnic_latency_report(run);
  const boost::json::object j = lnic_latency_json(r, run, boost::json::object{{"pool", 1}});
  std::vector<std::string> keys;
  for (const auto& kv : j) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"title", "notes", "unit", "tsc_khz", "spans", "metrics",
                                            "tsc_offset_drift_us", "tsc_offset_stable",
                                            "guest_kind", "guest_idle_mode", "vcpu0_halt_exits",
                                            "vcpu0_halt_wait_ns"}));
  EXPECT_EQ(j.at("metrics").as_object(), (boost::json::object{{"pool", 1}}));
  EXPECT_EQ(j.at("tsc_offset_drift_us").as_double(), 0.0);
  EXPECT_EQ(j.at("tsc_offset_stable").as_bool(), true);  // no stamps, none early
  EXPECT_EQ(j.at("vcpu0_halt_exits").as_uint64(), 77u);
  EXPECT_EQ(j.at("vcpu0_halt_wait_ns").as_uint64(), 5000u);
  EXPECT_EQ(j.at("guest_kind").as_string(), "freestanding");
  EXPECT_EQ(j.at("guest_idle_mode").as_string(), "halted");
  run.halts = std::nullopt;  // no KVM statistics: the keys are left out, not zero
  const auto k = lnic_latency_json(r, run, {});
  EXPECT_FALSE(k.contains("vcpu0_halt_exits"));
  EXPECT_FALSE(k.contains("vcpu0_halt_wait_ns"));
  EXPECT_EQ(k.at("guest_idle_mode").as_string(), "not observed");
}

// A Linux guest's handler stamps deeper in its interrupt path than a freestanding one's:
// the note and the JSON say which guest answered.
TEST(LnicLatencyReport, GuestKindIsNamedInTheNotesAndTheJson) {
  Fixture f;
  LnicLatencyRun run = f.run();
  run.guest_kind = LatencyGuestKind::linux_kernel;
  const LatencyReport r = lnic_latency_report(run);
  EXPECT_NE(notes_of(r.table()).find(
                "  guest kind: Linux (lnic.ko): its MSI-X handler stamps after the kernel's "
                "interrupt entry and IRQ dispatch\n"),
            std::string::npos)
      << r.table();
  const boost::json::object j = lnic_latency_json(r, run, {});
  EXPECT_EQ(j.at("guest_kind").as_string(), "linux");
  EXPECT_EQ(j.at("guest_idle_mode").as_string(), "never halted");  // the fixture's 0 HLTs
  EXPECT_EQ(guest_kind_name(LatencyGuestKind::freestanding), "freestanding");
}

TEST(LatencyReportIdleMode, HaltedIsWhatKvmCounted) {
  const std::string n = idle_mode_note(HaltObservation{.vcpu = 0,
                                                       .seconds = 2.0,
                                                       .halt_exits = 1234,
                                                       .halt_wait_ns = 1'000'000'000,
                                                       .has_wait = true});
  EXPECT_EQ(n.rfind("halted: vCPU 0 executed HLT 1234 times in the measured 2.0 s", 0), 0u) << n;
  EXPECT_NE(n.find("blocked in it 50% of the time"), std::string::npos) << n;
  EXPECT_NE(n.find("halt_exits, halt_wait_ns"), std::string::npos) << n;
}

TEST(LatencyReportIdleMode, NoHltCountedIsNeverHalted) {
  // The guest that polls (or spins) executes no HLT: the note must not call it halted,
  // whatever the kernel image is called.
  const std::string n = idle_mode_note(
      HaltObservation{.vcpu = 0, .seconds = 2.0, .halt_exits = 0, .has_wait = false});
  EXPECT_EQ(n.rfind("never halted: vCPU 0 executed no HLT", 0), 0u) << n;
  EXPECT_NE(n.find("(KVM statistic halt_exits)"), std::string::npos) << n;
}

TEST(LatencyReportIdleMode, WithoutKvmStatisticsItSaysNotObserved) {
  const std::string n = idle_mode_note(std::nullopt);
  EXPECT_EQ(n.rfind("not observed", 0), 0u) << n;
  EXPECT_NE(n.find("KVM_GET_STATS_FD"), std::string::npos) << n;
}

TEST(LatencyReportAllocSpan, DescriptionStatesTheCalibrationAndTheZeroedSamples) {
  const std::string d = alloc_span_description(/*timer_ticks=*/40, /*net_zero=*/7, 100);
  EXPECT_NE(d.find("net of the rdtsc pair's own cost (40 ticks"), std::string::npos) << d;
  EXPECT_NE(d.find("calibrated at start"), std::string::npos) << d;
  EXPECT_NE(d.find("samples at or below it count as 0 (7 of 100)"), std::string::npos) << d;
}

}  // namespace
}  // namespace labyrinth::vmm
