// The latency report's notes say what was observed and what a span is net of.
#include "vmm/report/latency_report.h"

#include <gtest/gtest.h>

#include <string>

namespace labyrinth::vmm {
namespace {

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

TEST(LatencyReport, TableAndJsonCarryNotesAndSpanDescriptions) {
  LatencyReport r("lnic0");
  r.note("guest idle mode", idle_mode_note(std::nullopt));
  measure::Histogram h;
  h.record(100);
  r.add("alloc", alloc_span_description(40, 0, 1), h, 0);
  const std::string t = r.table();
  EXPECT_NE(t.find("  guest idle mode: not observed"), std::string::npos) << t;
  EXPECT_NE(t.find("  alloc: alloc_page(atomic|exclusive) call on the RX path, net of"),
            std::string::npos)
      << t;
  const auto j = r.json();
  EXPECT_EQ(std::string(j.at("notes").at("guest idle mode").as_string()),
            idle_mode_note(std::nullopt));
  EXPECT_EQ(std::string(j.at("spans").at("alloc").at("description").as_string()),
            alloc_span_description(40, 0, 1));
}

}  // namespace
}  // namespace labyrinth::vmm
