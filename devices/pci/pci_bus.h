// devices/pci/pci_bus.h — PCI bus 0 behind configuration mechanism 1 (ports 0xCF8/0xCFC);
// the same bus is also reached through ECAM (pci_ecam.h), which calls config_read/_write.
//
// The guest writes CONFIG_ADDRESS (0xCF8, 32 bits: enable bit 31, bus 23:16, device
// 15:11, function 10:8, register 7:2) and then reads or writes CONFIG_DATA
// (0xCFC..0xCFF, 1, 2 or 4 bytes at the register plus the port's offset). Only bus 0,
// function 0 of each of its 32 device slots exists; everything else reads all-ones,
// which is how a guest learns that no device is there. Other accesses to 0xCF8
// (Linux's probe writes a byte to 0xCFB) leave the address alone.
// Bits 1:0 of CONFIG_ADDRESS read back as 0 but, as in QEMU, add to the data port's byte
// offset: kvm-unit-tests reads a 16-bit register at 2 as CONFIG_ADDRESS | 2 and then
// 0xCFC (lib/x86/asm/pci.h), where Linux would read 0xCFE. An access that would then run
// past the dword reads all-ones and writes nothing, like any other straddling access.
// Slot 0 holds the host bridge (class 0x0600, Intel 0x8086:0x0d57 as in Cloud
// Hypervisor), which is what Linux's pci_sanity_check looks for before using
// mechanism 1.
//
//   auto pci = std::make_shared<PciBus>();              // host bridge in slot 0
//   pci->insert(3, virtio_net_function).value();        // Error::overlap if taken
//   pio.insert(pci, PciBus::kBase, PciBus::kLen);
//
// Both front ends end in config_read/config_write (one model, no second copy of config
// state): bus 0, a device slot, a function, a register offset 0..4095, 1-4 bytes inside
// one dword. The functions are conventional PCI (no PCI Express capability), so their
// configuration space is 256 bytes: offsets 256..4095 — reachable only through ECAM —
// read all-ones and ignore writes, as QEMU does for a conventional device behind its
// PCIe host; Linux's pci_cfg_space_size_ext takes all-ones at 0x100 of the host bridge
// (the one function whose extended space it probes) as "no extended space".
//
// Thread-safety: mu_ guards the address register and the slots; a function's config
// accessors run under it. Lock order: Bus::devices_mu_ -> PciBus::mu_ -> <function>.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

// One function's 256-byte configuration space. offset is dword aligned; mask has the
// bits of the dword being written (a byte write at 0xCFD is mask 0x0000FF00).
class PciFunction {
 public:
  virtual ~PciFunction() = default;
  virtual std::string_view label() const = 0;
  virtual uint32_t read_config(uint8_t offset) = 0;
  virtual void write_config(uint8_t offset, uint32_t value, uint32_t mask) = 0;
};

// Type 0 header fields every function has.
struct PciId {
  uint16_t vendor = 0;
  uint16_t device = 0;
  uint32_t class_code = 0;  // class << 16 | subclass << 8 | prog-if
  uint8_t revision = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem = 0;
};

// The host bridge: identity registers only, all writes ignored.
class PciHostBridge final : public PciFunction {
 public:
  static constexpr PciId kId{0x8086, 0x0D57, 0x060000, 0, 0, 0};
  std::string_view label() const override { return "pci-host-bridge"; }
  uint32_t read_config(uint8_t offset) override;
  void write_config(uint8_t, uint32_t, uint32_t) override {}
};

class PciBus final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0xCF8, kLen = 8;
  static constexpr uint32_t kSlots = 32;
  static constexpr uint32_t kEnable = 0x80000000u;

  PciBus();  // the host bridge in slot 0
  std::string_view label() const override { return "pci-cam1"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Places fn at bus 0, device slot, function 0. Error::overlap if taken or out of range.
  std::expected<void, Error> insert(uint32_t slot, std::shared_ptr<PciFunction> fn);

  // One configuration access, whatever decoded it. Any values are accepted: reads fill
  // data with all-ones unless a function answers; writes that reach no function, or
  // offsets 256..4095, or data that is empty, wider than 4 bytes or crosses the dword of
  // offset, are ignored (and such reads give all-ones).
  static constexpr uint32_t kConfigSpaceBytes = 256;  // conventional PCI
  static constexpr uint32_t kExtendedSpaceBytes = 4096;
  struct ConfigAddress {
    uint32_t bus = 0, slot = 0, function = 0;
    uint32_t offset = 0;  // byte offset in the function's (extended) configuration space
  };
  void config_read(const ConfigAddress& at, std::span<uint8_t> data);
  void config_write(const ConfigAddress& at, std::span<const uint8_t> data);

 private:
  // The function at bus/slot/function, or nullptr (only bus 0, function 0). Needs mu_.
  PciFunction* function_at(const ConfigAddress& at) const;
  // The address CONFIG_ADDRESS selects with byte (0..6) added, or nullopt while its
  // enable bit is clear. Needs mu_.
  std::optional<ConfigAddress> selected(uint64_t byte) const;
  void read_locked(const ConfigAddress& at, std::span<uint8_t> data);
  void write_locked(const ConfigAddress& at, std::span<const uint8_t> data);

  mutable std::mutex mu_;
  uint32_t address_ = 0;      // CONFIG_ADDRESS as it reads back (bits 1:0 clear)
  uint32_t address_low_ = 0;  // its bits 1:0 as written: 0..3
  std::array<std::shared_ptr<PciFunction>, kSlots> slots_;
};

// Reads dword-aligned `offset` of a type 0 header built from id (the registers every
// function has: IDs, command/status 0, class, header type 0, subsystem). 0 elsewhere.
uint32_t pci_header_dword(const PciId& id, uint8_t offset);

}  // namespace labyrinth::devices
