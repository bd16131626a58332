// devices/legacy/acpi_pm.h — the ACPI PM1a event and control blocks of a Linux guest.
//
// The machine's FADT (vmm/boot/acpi.h) is a full one, not hardware-reduced, and points
// at these fixed-hardware registers (ACPI 6.5, 4.8.3.1-2), six I/O ports:
//   kBase + 0  PM1a_STS (16 bits): no fixed event is ever raised, so it reads 0; writes
//              (1 clears a bit) have nothing to clear.
//   kBase + 2  PM1a_EN  (16 bits): kept as written (ACPICA disables every fixed event).
//   kBase + 4  PM1a_CNT (16 bits): SCI_EN (bit 0) always reads 1 — the machine is in ACPI
//              mode from the start (the FADT has no SMI_CMD port) — the rest is kept.
//              Writing SLP_EN (bit 13) with SLP_TYP (bits 10-12) = kSlpTypS5, the value
//              the DSDT's \_S5 package gives, is the guest's power-off: the VM ends with 0.
//              Other sleep types are not offered (\_S1..\_S4 absent) and are ignored.
// No SCI is ever raised: nothing here generates an event.
//
//   pio.insert(std::make_shared<AcpiPm>(vm_control), AcpiPm::kBase, AcpiPm::kLen);
//
// Thread-safety: mu_ guards the registers (any vCPU thread). Order: Bus::devices_mu_ ->
// AcpiPm::mu_; request_shutdown is called with mu_ released.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class AcpiPm final : public BusDevice {
 public:
  static constexpr uint16_t kBase = 0x600, kLen = 6;
  static constexpr uint16_t kEventBlock = kBase, kEventLen = 4;          // PM1a_EVT_BLK
  static constexpr uint16_t kControlBlock = kBase + 4, kControlLen = 2;  // PM1a_CNT_BLK
  static constexpr uint8_t kSlpTypS5 = 5;
  static constexpr uint16_t kSciEn = 1u << 0, kSlpEn = 1u << 13;

  explicit AcpiPm(VmControl& control) : control_(control) {}
  std::string_view label() const override { return "acpi-pm"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
  std::mutex mu_;
  std::array<uint8_t, kLen> regs_{};  // STS (always 0), EN, CNT as written
};

}  // namespace labyrinth::devices
