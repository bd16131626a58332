#include "devices/pci/pci_ecam.h"

namespace labyrinth::devices {

// Bits 27:20 bus, 19:15 device, 14:12 function, 11:0 register. The Bus only hands over
// offsets inside the window, but anything above bit 27 is kept in the bus number so that
// a wider window could never alias bus 0 (PciBus answers bus 0 only).
PciBus::ConfigAddress PciEcam::decode(uint64_t offset) {
  const uint64_t bus = offset >> 20;
  return {.bus = bus > 0xFF ? 0x100u : static_cast<uint32_t>(bus),
          .slot = static_cast<uint32_t>((offset >> 15) & 0x1F),
          .function = static_cast<uint32_t>((offset >> 12) & 0x7),
          .offset = static_cast<uint32_t>(offset & 0xFFF)};
}

void PciEcam::read(uint64_t offset, std::span<uint8_t> data) {
  bus_->config_read(decode(offset), data);
}

void PciEcam::write(uint64_t offset, std::span<const uint8_t> data) {
  bus_->config_write(decode(offset), data);
}

}  // namespace labyrinth::devices
