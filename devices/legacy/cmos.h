// devices/legacy/cmos.h — the MC146818 CMOS RTC, as much as a Linux guest reads.
//
// Ports 0x70 (index; bit 7 is the NMI mask, ignored) and 0x71 (data). Linux reads the
// wall clock from it at boot (mc146818_get_time) and waits while status A's
// "update in progress" bit is set; unmapped ports read 0xFF, so without this device
// that bit looks set forever and the kernel stalls in its retries. Registers:
//   0x00 seconds, 0x02 minutes, 0x04 hours, 0x06 weekday, 0x07 day, 0x08 month,
//   0x09 year, 0x32 century: the host's UTC time, BCD, read at each access;
//   0x0A status A: 0x26 (32.768 kHz base, 1024 Hz rate, never updating);
//   0x0B status B: 0x02 (24-hour mode, BCD, no interrupts enabled); writes are kept;
//   0x0C status C: 0 (no interrupt pending); 0x0D status D: 0x80 (time valid);
//   the rest: 114 bytes of battery-backed RAM, zero at start, writable.
// No alarm or periodic interrupt (IRQ 8) is ever raised.
//
//   pio.insert(std::make_shared<Cmos>(), Cmos::kBase, Cmos::kLen);
//
// Thread-safety: mu_ guards the index and RAM (vCPU threads). Order:
// Bus::devices_mu_ -> Cmos::mu_.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

class Cmos final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x70, kLen = 2;
  static constexpr uint8_t kStatusA = 0x0A, kStatusB = 0x0B, kStatusC = 0x0C, kStatusD = 0x0D;

  // now: the clock (tests pass a fixed one); the default is time(nullptr).
  explicit Cmos(std::function<std::time_t()> now = [] { return std::time(nullptr); })
      : now_(std::move(now)) {}
  std::string_view label() const override { return "cmos"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint8_t reg(uint8_t index) const;  // needs mu_

  std::function<std::time_t()> now_;
  mutable std::mutex mu_;
  uint8_t index_ = 0;
  std::array<uint8_t, 128> ram_{};
};

}  // namespace labyrinth::devices
