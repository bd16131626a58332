// devices/legacy/cmos.h — the MC146818 CMOS RTC, as much as Linux and kvm-unit-tests use.
//
// Ports 0x70 (index; bit 7 is the NMI mask, ignored) and 0x71 (data). Linux reads the
// wall clock from it at boot (mc146818_get_time) and waits while status A's
// "update in progress" bit is set; unmapped ports read 0xFF, so without this device
// that bit looks set forever and the kernel stalls in its retries. Registers:
//   0x00 seconds, 0x02 minutes, 0x04 hours, 0x06 weekday, 0x07 day, 0x08 month,
//   0x09 year, 0x32 century: the host's UTC time, BCD, read at each access;
//   0x01, 0x03, 0x05 the seconds, minutes and hours alarm, as written (a value of
//        0xC0-0xFF: "don't care", any value matches);
//   0x0A status A: 0x26 (32.768 kHz base, 1024 Hz rate) | UIP (bit 7) during the last
//        244 us of each second of the host clock, as QEMU's (kUipHold): the update
//        cycle a guest waits out to see a second begin (kvm-unit-tests' s3 does);
//   0x0B status B: 0x02 (24-hour mode, BCD) | what the guest enables (AIE, bit 5, ...);
//   0x0C status C: IRQF | AF (0xA0) once the alarm woke the machine from S3
//        (alarm_fired()), cleared by the read; else 0;
//   0x0D status D: 0x80 (time valid);
//   the rest: 114 bytes of battery-backed RAM, zero at start, writable.
// No interrupt (IRQ 8) is raised while the machine runs: the alarm only wakes it from
// ACPI S3 (next_alarm(): the machine sleeps until then, devices/legacy/acpi_pm.h).
//
//   pio.insert(std::make_shared<Cmos>(), Cmos::kBase, Cmos::kLen);
//
// Thread-safety: mu_ guards the index and RAM (vCPU threads, and the event loop's
// next_alarm/alarm_fired). Order: Bus::devices_mu_ -> Cmos::mu_.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

class Cmos final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x70, kLen = 2;
  static constexpr uint8_t kStatusA = 0x0A, kStatusB = 0x0B, kStatusC = 0x0C, kStatusD = 0x0D;

  static constexpr uint8_t kStatusBAie = 0x20, kStatusCIrqf = 0x80, kStatusCAf = 0x20;
  static constexpr uint8_t kStatusAUip = 0x80;
  using Clock = std::chrono::system_clock;
  // 8 cycles of the 32.768 kHz base: how long UIP stays set before a second begins.
  static constexpr auto kUipHold = std::chrono::nanoseconds(1'000'000'000LL * 8 / 32768);

  // now: the clock (tests pass a fixed one); the default is the host's.
  explicit Cmos(std::function<Clock::time_point()> now = [] { return Clock::now(); })
      : now_(std::move(now)) {}
  // When the alarm next matches (a whole second of the clock after now), if the guest
  // enabled it (status B's AIE); else none.
  std::optional<Clock::time_point> next_alarm() const;
  // The alarm went off (the machine woke from S3 on it): status C says so until read.
  void alarm_fired();
  std::string_view label() const override { return "cmos"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint8_t reg(uint8_t index);  // needs mu_ (a read of status C clears it)

  std::function<Clock::time_point()> now_;
  mutable std::mutex mu_;
  uint8_t index_ = 0;
  uint8_t status_c_ = 0;
  std::array<uint8_t, 128> ram_{};  // RAM, the alarm registers and status B as written
};

}  // namespace labyrinth::devices
