// tests/support/device_fakes.h — stand-ins for the device-side interfaces, shared by the
// unit tests, the fuzz targets and the benches: guest RAM in host memory, a recording
// MSI line, a counting IRQ line, a string serial output, a recording VM control.
// Each is the simplest thing that honours its interface's contract; none needs a VM.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/guest_ram.h"
#include "devices/irq_line.h"
#include "devices/msi_line.h"
#include "devices/serial/uart16550.h"
#include "devices/vm_control.h"

namespace labyrinth::devices::test {

// Guest RAM: one zeroed region of size bytes at guest-physical base.
class FakeRam final : public GuestRam {
 public:
  FakeRam(uint64_t base, size_t size) : base_(base), bytes_(size) {}
  std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t len) const override {
    // Written so that no sum can wrap: gpa and len are the guest's.
    if (gpa < base_ || len > bytes_.size() || gpa - base_ > bytes_.size() - len) {
      return std::nullopt;
    }
    return std::span(const_cast<std::byte*>(bytes_.data()) + (gpa - base_), len);
  }
  // Direct access for the test's own "guest" (unchecked: the test's layout is its own).
  template <class T>
  T* at(uint64_t gpa) {
    return reinterpret_cast<T*>(bytes_.data() + (gpa - base_));
  }
  template <class T>
  void put(uint64_t gpa, const T& v) {
    std::memcpy(bytes_.data() + (gpa - base_), &v, sizeof v);
  }
  template <class T>
  T get(uint64_t gpa) const {
    T v;
    std::memcpy(&v, bytes_.data() + (gpa - base_), sizeof v);
    return v;
  }
  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + bytes_.size(); }

 private:
  uint64_t base_;
  std::vector<std::byte> bytes_;
};

// An MSI line that accepts what x86 would deliver (address 0xFEExxxxx, vector >= 32,
// below that are exceptions), records the message and counts triggers.
struct RecordingMsi final : MsiLine {
  bool configure(uint64_t addr, uint32_t value) override {
    if ((addr >> 20) != 0xFEE || (value & 0xFF) < 32) return false;
    address = addr;
    data = value;
    configured = true;
    return true;
  }
  void trigger() override { triggers.fetch_add(1); }
  uint64_t address = 0;
  uint32_t data = 0;
  bool configured = false;
  std::atomic<int> triggers{0};
};

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
  void request_suspend() override { ++suspends; }
  std::vector<int> statuses;
  int suspends = 0;
  std::vector<std::string> reasons;
};

}  // namespace labyrinth::devices::test
