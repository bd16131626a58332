// The lnic's PCI function: config space (IDs, BAR0, MSI-X capability) and BAR0 decoding.
#include "devices/lnic/lnic_pci.h"

#include <cstring>

namespace labyrinth::devices::lnic {

namespace {
constexpr uint16_t kCommandMask = 0x0406;  // memory space, bus master, INTx disable
constexpr uint16_t kStatusCapList = 0x0010;

void put16(std::array<uint8_t, 256>& c, size_t off, uint16_t v) {
  std::memcpy(&c[off], &v, 2);
}
void put32(std::array<uint8_t, 256>& c, size_t off, uint32_t v) {
  std::memcpy(&c[off], &v, 4);
}
}  // namespace

LnicPci::LnicPci(std::shared_ptr<Lnic> nic, uint32_t bar_gpa)
    : nic_(std::move(nic)), bar_gpa_(bar_gpa), label_("lnic-pci:" + nic_->config().id) {
  // Built once: what read_config overlays is the command register, the BAR while it is
  // being sized, the interrupt line and the MSI-X control bits.
  auto& c = cfg_;
  put16(c, 0x00, LNIC_PCI_VENDOR);
  put16(c, 0x02, LNIC_PCI_DEVICE);
  put16(c, 0x06, kStatusCapList);
  put32(c, 0x08, LNIC_PCI_CLASS << 8 | LNIC_VERSION);  // revision = the ABI version
  put32(c, 0x10, bar_gpa_);                            // 32-bit memory BAR, non-prefetchable
  put16(c, 0x2C, LNIC_PCI_VENDOR);
  put16(c, 0x2E, LNIC_PCI_DEVICE);
  c[0x34] = LNIC_PCI_CAP_MSIX;
  MsixTable::put_capability(c, LNIC_PCI_CAP_MSIX, 0, nic_->msix().size(), LNIC_MSIX_TABLE_OFF,
                            LNIC_MSIX_PBA_OFF);
}

uint32_t LnicPci::read_config(uint8_t offset) {
  std::lock_guard lock(mu_);
  uint32_t v = 0;
  std::memcpy(&v, &cfg_[offset], 4);
  switch (offset) {
    case 0x04:
      return (v & 0xFFFF0000u) | command_;
    case 0x10:
      return bar_probe_ ? static_cast<uint32_t>(~(LNIC_BAR_SIZE - 1)) : v;
    case 0x3C:
      return (v & 0xFFFFFF00u) | irq_line_;
    case LNIC_PCI_CAP_MSIX:
      return v | nic_->msix().control_bits();
    default:
      return v;
  }
}

void LnicPci::write_config(uint8_t offset, uint32_t value, uint32_t mask) {
  std::lock_guard lock(mu_);
  switch (offset) {
    case 0x04:
      if ((mask & 0xFFFF) != 0) {
        command_ = static_cast<uint16_t>((command_ & ~mask) | (value & mask)) & kCommandMask;
      }
      return;
    case 0x10:
      // A full all-ones write is the size probe; the BAR itself does not move.
      bar_probe_ = mask == 0xFFFFFFFFu && value == 0xFFFFFFFFu;
      return;
    case 0x3C:
      if ((mask & 0xFF) != 0) irq_line_ = static_cast<uint8_t>(value);
      return;
    case LNIC_PCI_CAP_MSIX:
      nic_->msix().write_control(value, mask);
      return;
    default:
      return;  // read-only
  }
}

// Anything that is neither register file, table nor PBA is a bad access: all-ones,
// counted. The register file checks its own widths and offsets.
void LnicPci::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset < LNIC_MMIO_SIZE) {
    nic_->read(offset, data);
    return;
  }
  std::expected<void, MsixError> r = std::unexpected(MsixError::bad_access);
  if (offset >= LNIC_MSIX_TABLE_OFF && offset < LNIC_MSIX_PBA_OFF) {
    r = nic_->msix().read_table(offset - LNIC_MSIX_TABLE_OFF, data);
  } else if (offset >= LNIC_MSIX_PBA_OFF) {
    r = nic_->msix().read_pba(offset - LNIC_MSIX_PBA_OFF, data);
  }
  if (!r) {
    std::memset(data.data(), 0xFF, data.size());
    nic_->mutable_metrics().msix_bad_access.inc_shared();
  }
}

void LnicPci::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset < LNIC_MMIO_SIZE) {
    nic_->write(offset, data);
    return;
  }
  if (offset >= LNIC_MSIX_TABLE_OFF && offset < LNIC_MSIX_PBA_OFF) {
    // A refused message leaves the vector silent: the driver finds no interrupts.
    auto r = nic_->msix().write_table(offset - LNIC_MSIX_TABLE_OFF, data);
    if (!r && r.error() == MsixError::rejected_message) {
      nic_->mutable_metrics().msix_rejects.inc_shared();
      return;
    }
    if (r) return;
  }
  nic_->mutable_metrics().msix_bad_access.inc_shared();  // the PBA is read-only
}

}  // namespace labyrinth::devices::lnic
