// tests/devices/fakes.h — recording stand-ins for the device-side interfaces.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "devices/irq_line.h"
#include "devices/serial/uart16550.h"
#include "devices/vm_control.h"

namespace labyrinth::devices::test {

struct CountingIrq final : IrqLine {
  void trigger() override { count.fetch_add(1); }
  std::atomic<int> count{0};
};

struct StringOutput final : SerialOutput {
  void write(std::span<const uint8_t> bytes) override { text.append(bytes.begin(), bytes.end()); }
  std::string text;
};

struct RecordingControl final : VmControl {
  void request_shutdown(int status, std::string_view reason) override {
    statuses.push_back(status);
    reasons.emplace_back(reason);
  }
  std::vector<int> statuses;
  std::vector<std::string> reasons;
};

}  // namespace labyrinth::devices::test
