// devices/pci/type0_config.h — the type-0 configuration header that each of Labyrinth's
// own PCI functions (the virtio transport, the lnic) answers the same way.
//
// What it models: the identity registers (PciId), a command register that keeps only
// memory space, bus master and INTx disable, a status register that announces a
// capability list, one 32-bit non-prefetchable memory BAR0 that the VMM places (the size
// probe is answered; the BAR never moves), the interrupt line byte (stored, never used:
// these functions signal by MSI-X only), and the MSI-X capability's control bits, which
// belong to the function's MsixTable. Everything else the function writes into image()
// once, at construction (its capability chain); the rest reads as that image and ignores
// writes.
//
//   PciType0Config cfg(id, bar_gpa, kBarSize, /*first_cap=*/0x40, /*msix_cap=*/0x84, msix);
//   MsixTable::put_capability(cfg.image(), 0x84, 0, msix.size(), table_off, pba_off);
//   read_config(off):        return cfg.read(off);      // under the function's lock
//   write_config(off, v, m): cfg.write(off, v, m);
//
// Not thread-safe: the function's own lock guards it (read and write change or read the
// overlaid registers); MsixTable takes its own lock inside (lock order: the function's
// lock -> MsixTable::mu_).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "devices/pci/msix.h"
#include "devices/pci/pci_bus.h"

namespace labyrinth::devices {

class PciType0Config {
 public:
  using Image = std::array<uint8_t, 256>;
  static constexpr uint16_t kCommandMask = 0x0406;  // memory space, bus master, INTx disable
  static constexpr uint16_t kStatusCapList = 0x0010;

  // bar_size: a power of two of at least 16 bytes; first_cap: the capability pointer;
  // msix_cap: where the function puts the MSI-X capability. msix outlives this object.
  PciType0Config(const PciId& id, uint32_t bar_gpa, uint32_t bar_size, uint8_t first_cap,
                 uint8_t msix_cap, MsixTable& msix);

  // The image, for the function's capabilities (written once, before the first read).
  Image& image() { return image_; }

  // offset: dword aligned (PciFunction's contract); mask: the bits being written.
  uint32_t read(uint8_t offset) const;
  void write(uint8_t offset, uint32_t value, uint32_t mask);

  uint16_t command() const { return command_; }

  static void put16(Image& c, size_t off, uint16_t v);
  static void put32(Image& c, size_t off, uint32_t v);

 private:
  Image image_{};
  const uint32_t bar_size_;
  const uint8_t msix_cap_;
  MsixTable& msix_;
  uint16_t command_ = 0;
  uint8_t irq_line_ = 0;
  bool bar_probe_ = false;
};

}  // namespace labyrinth::devices
