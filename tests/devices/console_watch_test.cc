#include "devices/serial/console_watch.h"

#include <gtest/gtest.h>

#include <string_view>

#include "tests/support/device_fakes.h"

namespace labyrinth::devices {
namespace {

void put(ConsoleWatch& w, std::string_view s) {
  w.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(ConsoleWatch, PassesBytesThroughAndKeepsTheLastLines) {
  test::StringOutput out;
  test::RecordingControl control;
  ConsoleWatch w(out, control);
  for (int i = 0; i < 40; ++i) put(w, "line " + std::to_string(i) + "\r\n");
  put(w, "partial");
  EXPECT_EQ(out.text.substr(0, 8), "line 0\r\n");
  auto lines = w.last_lines();
  ASSERT_EQ(lines.size(), ConsoleWatch::kKeepLines + 1);
  EXPECT_EQ(lines.front(), "line 10");
  EXPECT_EQ(lines[lines.size() - 2], "line 39");
  EXPECT_EQ(lines.back(), "partial");
  EXPECT_TRUE(control.statuses.empty());
  EXPECT_FALSE(w.panicked());
}

TEST(ConsoleWatch, EndOfPanicReportEndsTheVmWithTheCrashStatus) {
  test::StringOutput out;
  test::RecordingControl control;
  ConsoleWatch w(out, control);
  put(w, "[    1.0] Kernel panic - not syncing: sysrq triggered crash\n[    1.1] Call Trace:\n");
  EXPECT_TRUE(control.statuses.empty()) << "only the end of the report ends the VM";
  EXPECT_TRUE(w.panicked()) << "a reset from here on is a crash (panic=-1)";
  EXPECT_EQ(w.panic_line(), "[    1.0] Kernel panic - not syncing: sysrq triggered crash");
  put(w, "[    1.2] ---[ end Kernel panic - not syncing: sysrq triggered ");  // split write
  EXPECT_TRUE(control.statuses.empty());
  put(w, "crash ]---\n");
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], ConsoleWatch::kExitPanic);
  EXPECT_TRUE(w.panicked());
  auto lines = w.last_lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find("Kernel panic - not syncing"), std::string::npos);
  put(w, "reboot: Power down\n");  // after a panic: no second request
  EXPECT_EQ(control.statuses.size(), 1u);
}

TEST(ConsoleWatch, HaltEndsTheVmWithZeroPowerDownWaitsForTheAcpiWrite) {
  test::StringOutput out;
  test::RecordingControl control;
  ConsoleWatch w(out, control);
  // With ACPI the power-off itself (acpi_pm.h) follows this line and ends the VM.
  put(w, "[   10.0] reboot: Power down\n");
  EXPECT_TRUE(control.statuses.empty());
  EXPECT_FALSE(w.powered_off());
  // Without ACPI a power-off is a halt.
  put(w, "[   82.1] reboot: System halted\n");
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0);
  EXPECT_TRUE(w.powered_off());
  // init exiting after poweroff -f panics the kernel: the VM already ended with 0.
  put(w, "---[ end Kernel panic - not syncing: Attempted to kill init! ]---\n");
  EXPECT_EQ(control.statuses.size(), 1u);
  EXPECT_FALSE(w.panicked());
}

}  // namespace
}  // namespace labyrinth::devices
