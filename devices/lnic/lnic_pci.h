// devices/lnic/lnic_pci.h — the lnic as a PCI function: config space and BAR0.
//
// One function per lnic (guest/abi/lnic.h, "Discovery"): vendor LNIC_PCI_VENDOR,
// device LNIC_PCI_DEVICE, class 0x020000, one 32-bit memory BAR of LNIC_BAR_SIZE bytes
// and an MSI-X capability (LNIC_MSIX_VECTORS vectors). BAR0 decodes as
//
//   + 0x0000 .. 0x0FFF  the register file          -> Lnic::read / Lnic::write
//   + 0x1000 .. 0x17FF  MSI-X table                -> Lnic::msix().read_table / write_table
//   + 0x1800 .. 0x1807  MSI-X PBA (read-only)      -> Lnic::msix().read_pba
//
// everything else reads all-ones and is counted (LnicMetrics::msix_bad_access), as is a
// table access of a width MsixTable does not take; an entry unmasked with a message
// MsiLine::configure refuses is counted as msix_rejects (the vector stays silent). The
// BAR is placed by the VMM and does not move (the size probe is answered, other writes
// ignored); there is no INTx (interrupt pin 0) and no other capability.
//
//   auto fn = std::make_shared<LnicPci>(nic, bar_gpa);
//   pci.insert(slot, fn);  mmio.insert(fn, bar_gpa, LNIC_BAR_SIZE);
//
// Threads: config and BAR accesses on vCPU threads. mu_ guards the few writable config
// fields; lock order: Bus::devices_mu_ / PciBus::mu_ -> LnicPci::mu_ -> MsixTable::mu_.
// Register-file accesses go to the Lnic without mu_ (it has its own lock).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "devices/bus/bus.h"
#include "devices/lnic/lnic.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/type0_config.h"

namespace labyrinth::devices::lnic {

class LnicPci final : public PciFunction, public BusDevice {
 public:
  LnicPci(std::shared_ptr<Lnic> nic, uint32_t bar_gpa);

  std::string_view label() const override { return label_; }
  // PCI configuration space.
  uint32_t read_config(uint8_t offset) override;
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override;
  // BAR0 (MMIO bus).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t bar_gpa() const { return bar_gpa_; }
  Lnic& nic() { return *nic_; }

 private:
  std::shared_ptr<Lnic> nic_;
  const uint32_t bar_gpa_;
  std::string label_;

  std::mutex mu_;       // guards cfg_
  PciType0Config cfg_;  // IDs, class, BAR0, the MSI-X capability
};

}  // namespace labyrinth::devices::lnic
