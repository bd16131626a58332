// devices/legacy/acpi_pm.h — the ACPI PM1a event and control blocks and the PM timer.
//
// The machine's FADT (vmm/boot/acpi.h) is a full one, not hardware-reduced, and points
// at these fixed-hardware registers (ACPI 6.5, 4.8.3.1-3), I/O ports from kBase:
//   kBase + 0  PM1a_STS (16 bits): WAK_STS (bit 15) and RTC_STS (bit 10) once the
//              machine woke from S3 on the RTC alarm (woke()); 1 written clears a bit.
//   kBase + 2  PM1a_EN  (16 bits): kept as written; RTC_EN (bit 10) lets the RTC alarm
//              wake the machine from S3 (rtc_wake_enabled()).
//   kBase + 4  PM1a_CNT (16 bits): SCI_EN (bit 0) always reads 1 — the machine is in ACPI
//              mode from the start (the FADT has no SMI_CMD port) — the rest is kept.
//              SLP_EN (bit 13) with SLP_TYP (bits 10-12) = kSlpTypS5, the DSDT's \_S5,
//              is the guest's power-off: the VM ends with 0. SLP_TYP = kSlpTypS3, the
//              DSDT's \_S3, is suspend to RAM: VmControl::request_suspend() (the
//              machine stops every vCPU before the writer's next instruction and wakes
//              on the RTC alarm, vmm/machine.h). Other sleep types are ignored.
//   kBase + 8  PM_TMR (32-bit reads): the ACPI PM timer, 24 bits counting at
//              3.579545 MHz from the device's creation (the host's monotonic clock).
//              The FADT names it to Multiboot kernels only (kvm-unit-tests' vmexit
//              times inl_from_pmtimer on QEMU's); Linux would spend a 30 ms PIT-timed
//              rate check at boot on it (acpi_pm's verify_pmtmr_rate) and has kvm-clock.
// No SCI is ever raised: an event only shows in PM1a_STS.
//
//   pio.insert(std::make_shared<AcpiPm>(vm_control), AcpiPm::kBase, AcpiPm::kLen);
//
// Thread-safety: mu_ guards the registers (any vCPU thread, the event loop's woke()).
// Order: Bus::devices_mu_ -> AcpiPm::mu_; request_shutdown/request_suspend are called
// with mu_ released.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class AcpiPm final : public BusDevice {
 public:
  static constexpr uint16_t kBase = 0x600, kLen = 12;
  static constexpr uint16_t kEventBlock = kBase, kEventLen = 4;          // PM1a_EVT_BLK
  static constexpr uint16_t kControlBlock = kBase + 4, kControlLen = 2;  // PM1a_CNT_BLK
  static constexpr uint16_t kTimerBlock = kBase + 8, kTimerLen = 4;      // PM_TMR_BLK
  static constexpr uint8_t kSlpTypS3 = 1, kSlpTypS5 = 5;
  static constexpr uint16_t kWakSts = 1u << 15, kRtcSts = 1u << 10, kRtcEn = 1u << 10;
  static constexpr uint64_t kTimerHz = 3'579'545;
  static constexpr uint16_t kSciEn = 1u << 0, kSlpEn = 1u << 13;

  explicit AcpiPm(VmControl& control)
      : control_(control), start_(std::chrono::steady_clock::now()) {}
  std::string_view label() const override { return "acpi-pm"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  // Whether the guest enabled the RTC alarm as a wake event (PM1a_EN's RTC_EN).
  bool rtc_wake_enabled() const;
  // The machine woke from S3 (on the RTC alarm if rtc): PM1a_STS says so.
  void woke(bool rtc);

 private:
  VmControl& control_;
  std::chrono::steady_clock::time_point start_;  // the PM timer's 0
  mutable std::mutex mu_;
  uint16_t status_ = 0;            // PM1a_STS
  std::array<uint8_t, 6> regs_{};  // [2, 6): EN and CNT as written
};

}  // namespace labyrinth::devices
