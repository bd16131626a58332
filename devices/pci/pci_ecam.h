// devices/pci/pci_ecam.h — PCI Express enhanced configuration access (ECAM, Linux's
// "MMCONFIG") to the PciBus: the second front end of the one bus model, beside
// configuration mechanism 1.
//
// An MMIO window where each function's 4 KiB configuration space lies at
//   base + (bus << 20 | device << 15 | function << 12 | register)
// (PCI Express Base spec, 7.2.2). The window covers bus 0 only (1 MiB), the one bus
// this machine has; the ACPI MCFG table and the host bridge's _CRS say bus 0 (acpi.h).
// Reads and writes go to PciBus::config_read/config_write, so they reach the same
// functions and registers as 0xCF8/0xCFC; the rules for what the guest may send (any
// offset, any size) are that bus's: all-ones where nothing answers, writes ignored.
//
//   auto pci = std::make_shared<PciBus>();
//   mmio.insert(std::make_shared<PciEcam>(pci), vmm::kPciEcamGpa, PciEcam::kLen);  // acpi.h
//
// Thread-safety: no state of its own; PciBus::mu_ serialises (lock order in pci_bus.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"

namespace labyrinth::devices {

class PciEcam final : public BusDevice {
 public:
  static constexpr uint64_t kBytesPerFunction = PciBus::kExtendedSpaceBytes;
  static constexpr uint64_t kBytesPerBus = kBytesPerFunction * 8 * PciBus::kSlots;  // 1 MiB
  static constexpr uint64_t kLen = kBytesPerBus;                                    // bus 0 only

  explicit PciEcam(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
  std::string_view label() const override { return "pci-ecam"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The configuration address an offset into the window decodes to.
  static PciBus::ConfigAddress decode(uint64_t offset);

 private:
  std::shared_ptr<PciBus> bus_;
};

}  // namespace labyrinth::devices
