// The lnic's PCI function: config space (IDs, BAR0, MSI-X capability) and BAR0 decoding.
#include "devices/lnic/lnic_pci.h"

#include <cstring>

namespace labyrinth::devices::lnic {

LnicPci::LnicPci(std::shared_ptr<Lnic> nic, uint32_t bar_gpa)
    : nic_(std::move(nic)),
      bar_gpa_(bar_gpa),
      label_("lnic-pci:" + nic_->config().id),
      cfg_(PciId{.vendor = LNIC_PCI_VENDOR,
                 .device = LNIC_PCI_DEVICE,
                 .class_code = LNIC_PCI_CLASS,
                 .revision = LNIC_VERSION,  // the ABI version
                 .subsystem_vendor = LNIC_PCI_VENDOR,
                 .subsystem = LNIC_PCI_DEVICE},
           bar_gpa_, LNIC_BAR_SIZE, LNIC_PCI_CAP_MSIX, LNIC_PCI_CAP_MSIX, nic_->msix()) {
  MsixTable::put_capability(cfg_.image(), LNIC_PCI_CAP_MSIX, 0, nic_->msix().size(),
                            LNIC_MSIX_TABLE_OFF, LNIC_MSIX_PBA_OFF);
}

uint32_t LnicPci::read_config(uint8_t offset) {
  std::lock_guard lock(mu_);
  return cfg_.read(offset);
}

void LnicPci::write_config(uint8_t offset, uint32_t value, uint32_t mask) {
  std::lock_guard lock(mu_);
  cfg_.write(offset, value, mask);
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
