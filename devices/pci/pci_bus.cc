#include "devices/pci/pci_bus.h"

#include <cstring>

namespace labyrinth::devices {

namespace {

// True if [offset, offset + size) is 1-4 bytes of one dword of the 256-byte space: what a
// function's dword accessors can serve. Offsets 256..4095 (ECAM's extended space) and
// accesses across a dword (undefined in PCIe; Linux never makes them) are not.
bool inside_one_dword(uint32_t offset, size_t size) {
  return size >= 1 && size <= 4 && offset < PciBus::kConfigSpaceBytes && (offset & 3u) + size <= 4;
}

}  // namespace

// The identity dwords of a type 0 header; everything else reads 0.
uint32_t pci_header_dword(const PciId& id, uint8_t offset) {
  switch (offset) {
    case 0x00:
      return uint32_t{id.device} << 16 | id.vendor;
    case 0x08:
      return id.class_code << 8 | id.revision;
    case 0x2C:
      return uint32_t{id.subsystem} << 16 | id.subsystem_vendor;
    default:
      return 0;  // command/status, BIST/header type 0, no BARs, no capabilities
  }
}

uint32_t PciHostBridge::read_config(uint8_t offset) {
  return pci_header_dword(kId, offset);
}

PciBus::PciBus() {
  slots_[0] = std::make_shared<PciHostBridge>();
}

std::expected<void, Error> PciBus::insert(uint32_t slot, std::shared_ptr<PciFunction> fn) {
  std::lock_guard lock(mu_);
  if (slot >= kSlots || slots_[slot] != nullptr || fn == nullptr) {
    return std::unexpected(Error::overlap);
  }
  slots_[slot] = std::move(fn);
  return {};
}

// Only bus 0, function 0 exist (PCI allows 8 functions a slot; nothing here has more).
PciFunction* PciBus::function_at(const ConfigAddress& at) const {
  if (at.bus != 0 || at.function != 0 || at.slot >= kSlots) return nullptr;
  return slots_[at.slot].get();
}

std::optional<PciBus::ConfigAddress> PciBus::selected(uint64_t byte) const {
  if ((address_ & kEnable) == 0) return std::nullopt;
  return ConfigAddress{.bus = (address_ >> 16) & 0xFF,
                       .slot = (address_ >> 11) & 0x1F,
                       .function = (address_ >> 8) & 0x7,
                       .offset = static_cast<uint32_t>((address_ & 0xFC) + byte)};
}

void PciBus::config_read(const ConfigAddress& at, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  read_locked(at, data);
}

void PciBus::config_write(const ConfigAddress& at, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  write_locked(at, data);
}

void PciBus::read_locked(const ConfigAddress& at, std::span<uint8_t> data) {
  // All-ones unless a function answers: "no device" (or "no such register") to the guest.
  std::memset(data.data(), 0xFF, data.size());
  if (!inside_one_dword(at.offset, data.size())) return;
  PciFunction* fn = function_at(at);
  if (fn == nullptr) return;
  const uint32_t dword = fn->read_config(static_cast<uint8_t>(at.offset & ~3u));
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&dword) + (at.offset & 3u),
              data.size());
}

void PciBus::write_locked(const ConfigAddress& at, std::span<const uint8_t> data) {
  if (!inside_one_dword(at.offset, data.size())) return;
  PciFunction* fn = function_at(at);
  if (fn == nullptr) return;
  // Functions see whole dwords: the bytes written, placed at their lane, and a mask of
  // those lanes, so a byte write to one register leaves its neighbours alone.
  const uint32_t lane = at.offset & 3u;
  uint32_t value = 0, mask = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    value |= uint32_t{data[i]} << (8 * (lane + i));
    mask |= 0xFFu << (8 * (lane + i));
  }
  fn->write_config(static_cast<uint8_t>(at.offset & ~3u), value, mask);
}

void PciBus::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    std::memcpy(data.data(), &address_, 4);
    return;
  }
  if (offset < 4) {  // partial reads of CONFIG_ADDRESS
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  const uint64_t byte = offset - 4 + address_low_;  // 0..6 inside the dword
  const auto at = selected(byte);
  if (!at || byte + data.size() > 4) {  // disabled, or straddles the end of CONFIG_DATA
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  read_locked(*at, data);
}

void PciBus::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset == 0 && data.size() == 4) {
    std::memcpy(&address_, data.data(), 4);
    address_low_ = address_ & 3u;  // QEMU's byte offset (the header comment)
    address_ &= 0x80FFFFFCu;       // reserved bits 30:24 and 1:0 read as 0
    return;
  }
  if (offset < 4) return;
  const uint64_t byte = offset - 4 + address_low_;
  const auto at = selected(byte);
  if (!at || byte + data.size() > 4) return;
  write_locked(*at, data);
}

}  // namespace labyrinth::devices
