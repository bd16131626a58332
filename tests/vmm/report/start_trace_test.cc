// StartTrace (--trace-start): the phases in order with their durations, the first vCPU
// run once, nothing while disabled.
#include "vmm/report/start_trace.h"

#include <gtest/gtest.h>

#include <string>

namespace labyrinth::vmm {
namespace {

using std::chrono::microseconds;

TEST(StartTrace, DisabledTraceRecordsAndPrintsNothing) {
  StartTrace t;
  t.mark("config");
  t.mark_first_run();
  EXPECT_FALSE(t.enabled());
  EXPECT_EQ(t.table(), "");
}

TEST(StartTrace, PrintsEachPhaseWithItsDurationAndTheRunningTotal) {
  StartTrace t;
  const auto t0 = StartTrace::Clock::time_point{};
  t.enable(12.0, t0);
  t.mark("config", t0 + microseconds(1500));
  t.mark("guest RAM", t0 + microseconds(4000));
  t.mark_first_run(t0 + microseconds(10000));
  t.mark_first_run(t0 + microseconds(99000));  // a second vCPU: the first one counts
  const std::string s = t.table();
  EXPECT_NE(
      s.find(
          "labyrinth: start: config                           1.500 ms  (main +     1.500 ms)\n"),
      std::string::npos)
      << s;
  EXPECT_NE(
      s.find(
          "labyrinth: start: guest RAM                        2.500 ms  (main +     4.000 ms)\n"),
      std::string::npos)
      << s;
  EXPECT_NE(s.find("first KVM_RUN (vCPU thread)      6.000 ms  (main +    10.000 ms)\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("exec -> main 12 ms"), std::string::npos) << s;
  EXPECT_NE(s.find("exec -> first KVM_RUN 22 ms"), std::string::npos) << s;
  EXPECT_LT(s.find("config"), s.find("guest RAM"));
}

TEST(StartTrace, KeepsAtMostItsMarksAndCountsTheRest) {
  StartTrace t;
  t.enable(-1);
  for (size_t i = 0; i < StartTrace::kMaxMarks + 3; ++i) t.mark("phase");
  const std::string s = t.table();
  EXPECT_NE(s.find("3 mark(s) dropped"), std::string::npos) << s;
  EXPECT_EQ(s.find("exec -> main"), std::string::npos) << s;  // unknown: not printed
}

TEST(StartTrace, ProcessAgeIsReadable) {
  const double ms = exec_to_now_ms();
  EXPECT_GE(ms, 0.0);
  EXPECT_LT(ms, 86'400'000.0);  // a day: not some other /proc/self/stat field
}

}  // namespace
}  // namespace labyrinth::vmm
