// devices/legacy/fw_cfg.h — QEMU's firmware configuration device, its x86 port interface.
//
// Ports (QEMU's, which kvm-unit-tests' lib/x86/fwcfg.c reads): 0x510 the selector, a
// 16-bit OUT of a key that also rewinds the item; 0x511 the data port, each 8-bit IN
// returns the item's next byte (0 past its end, and for a key with no item). Writes to
// the data port are ignored (QEMU ignores them too since 2.4); the DMA interface
// (0x514) is absent and the ID item says so. Items are little endian unless noted.
//
//   auto fw = std::make_shared<FwCfg>(FwCfg::standard({.ram_bytes = 128 << 20, .cpus = 2}));
//   pio.insert(fw, FwCfg::kBase, FwCfg::kLen);
//   // guest: outw(0x05, 0x510); n = inb(0x511) | inb(0x511) << 8;   -> 2
//
// Thread-safety: mu_ guards the selection (vCPU threads); the items are fixed at
// construction. Order: Bus::devices_mu_ -> FwCfg::mu_.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

class FwCfg final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x510, kLen = 2;  // selector, data
  // Keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h numbering).
  static constexpr uint16_t kSignature = 0x00;       // "QEMU"
  static constexpr uint16_t kId = 0x01;              // u32 feature bits: 1 = traditional interface
  static constexpr uint16_t kUuid = 0x02;            // 16 bytes, all zero
  static constexpr uint16_t kRamSize = 0x03;         // u64 bytes of guest RAM
  static constexpr uint16_t kNbCpus = 0x05;          // u16 CPUs present at boot
  static constexpr uint16_t kMaxCpus = 0x0F;         // u16 most CPUs the machine can have
  static constexpr uint16_t kFileDir = 0x19;         // u32 big-endian file count (0), no files
  static constexpr uint16_t kWriteChannel = 0x4000;  // selector bit: ignored (no writes)

  using Items = std::map<uint16_t, std::vector<uint8_t>>;
  struct Machine {
    uint64_t ram_bytes = 0;
    uint16_t cpus = 1;
    uint16_t max_cpus = 0;  // 0: as cpus
  };
  // The items above for this machine.
  static Items standard(const Machine& m);

  explicit FwCfg(Items items) : items_(std::move(items)) {}
  std::string_view label() const override { return "fw_cfg"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  const Items items_;
  std::mutex mu_;
  const std::vector<uint8_t>* selected_ = nullptr;  // guarded by mu_; nullptr: no item
  size_t pos_ = 0;                                  // guarded by mu_
};

}  // namespace labyrinth::devices
