#include "devices/pci/type0_config.h"

#include <cstring>

namespace labyrinth::devices {

void PciType0Config::put16(Image& c, size_t off, uint16_t v) {
  std::memcpy(&c[off], &v, 2);
}
void PciType0Config::put32(Image& c, size_t off, uint32_t v) {
  std::memcpy(&c[off], &v, 4);
}

PciType0Config::PciType0Config(const PciId& id, uint32_t bar_gpa, uint32_t bar_size,
                               uint8_t first_cap, uint8_t msix_cap, MsixTable& msix)
    : bar_size_(bar_size), msix_cap_(msix_cap), msix_(msix) {
  auto& c = image_;
  put16(c, 0x00, id.vendor);
  put16(c, 0x02, id.device);
  put16(c, 0x06, kStatusCapList);
  put32(c, 0x08, id.class_code << 8 | id.revision);
  put32(c, 0x10, bar_gpa);  // 32-bit memory BAR, non-prefetchable: type bits 0
  put16(c, 0x2C, id.subsystem_vendor);
  put16(c, 0x2E, id.subsystem);
  c[0x34] = first_cap;
}

// The image with the registers a driver can change laid over it.
uint32_t PciType0Config::read(uint8_t offset) const {
  uint32_t v = 0;
  std::memcpy(&v, &image_[offset & 0xFC], 4);
  if (offset == 0x04) return (v & 0xFFFF0000u) | command_;
  if (offset == 0x10) return bar_probe_ ? ~(bar_size_ - 1) : v;
  if (offset == 0x3C) return (v & 0xFFFFFF00u) | irq_line_;
  if (offset == msix_cap_) return v | msix_.control_bits();
  return v;
}

void PciType0Config::write(uint8_t offset, uint32_t value, uint32_t mask) {
  if (offset == 0x04) {
    // The status half (mask 0xFFFF0000) has no bit to clear here.
    if ((mask & 0xFFFF) != 0) {
      command_ = static_cast<uint16_t>((command_ & ~mask) | (value & mask)) & kCommandMask;
    }
  } else if (offset == 0x10) {
    // A full all-ones write is the size probe; the BAR itself does not move.
    bar_probe_ = mask == 0xFFFFFFFFu && value == 0xFFFFFFFFu;
  } else if (offset == 0x3C) {
    if ((mask & 0xFF) != 0) irq_line_ = static_cast<uint8_t>(value);
  } else if (offset == msix_cap_) {
    msix_.write_control(value, mask);
  }
  // Everything else is read-only.
}

}  // namespace labyrinth::devices
