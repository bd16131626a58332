// devices/pci/pci_testdev.h — QEMU's pci-testdev (hw/misc/pci-testdev.c, docs/specs/pci-testdev),
// the PCI function kvm-unit-tests finds by vendor 0x1B36, device 0x0005 (lib/pci-testdev.c,
// x86/vmexit.c's pci-mem and pci-io exits).
//
// Its contract, as the tests read it:
//   * configuration space: class 0xFF (other), no capabilities, no interrupt pin; BAR0 a
//     32-bit non-prefetchable memory BAR of 4 KiB (PciTestdev::kMemBar), BAR1 an I/O BAR of
//     256 ports (PciTestdev::kIoBar). The VMM places both; the size probe (all-ones written,
//     read back) is answered, a write that would move a BAR is ignored (the tests only
//     restore what they read).
//   * each BAR starts with a header (lib/pci.h's struct pci_test_dev_hdr):
//       0x00 test    (write) selects test N of this BAR; N >= 3 selects none
//       0x01 width   (read)  bytes a test write must have: 1
//       0x04 offset  (read)  where in the BAR the test writes go
//       0x08 data    (read)  the value they must carry (0xFA; "wildcard" tests: any, 0xCE)
//       0x0C count   (read)  test writes seen since the test was selected
//       0x10 name    (read)  "mmio-no-eventfd", "portio-wildcard-eventfd", ...; NUL ended
//     With no test selected, or past the selected test's name, the BAR reads 0.
//   * a write to the selected test's offset counts when it matches: QEMU takes the BARs a
//     byte at a time (a 4-byte access is four 1-byte ones), so does this device; a
//     datamatch test counts only a byte equal to its data, the others any byte.
// Difference from QEMU under KVM: QEMU hands its "*-eventfd" tests' offsets to KVM as
// ioeventfds, so those writes never leave the kernel and count stays 0 (the suite accepts 0
// or the number written). Here every test write is an exit to the VMM and is counted.
//
//   auto dev = std::make_shared<PciTestdev>();
//   pci.insert(PciTestdev::kSlot, dev->function());
//   mmio.insert(dev->mem_bar(), PciTestdev::kMemBar, PciTestdev::kMemLen);
//   pio.insert(dev->io_bar(), PciTestdev::kIoBar, PciTestdev::kIoLen);
//
// The guest is untrusted: every offset and width is checked against the BAR and the
// header (the bus already guarantees an access lies inside the BAR's range; the device
// re-checks, were a caller to bypass it).
// Thread-safety: vCPU threads call in concurrently; mu_ guards the selected test, the counts
// and the configuration registers. A leaf. Order: Bus::devices_mu_ -> PciBus::mu_ -> mu_.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"

namespace labyrinth::devices {

// Made with std::make_shared: the bus adapters function(), mem_bar() and io_bar() hand out
// share its ownership, so it lives as long as a bus still routes to it.
class PciTestdev : public std::enable_shared_from_this<PciTestdev> {
 public:
  static constexpr PciId kId{0x1B36, 0x0005, 0xFF0000, 0, 0x1AF4, 0x1100};
  static constexpr uint32_t kSlot = 12;  // free beside virtio-net (1..8) and lnics (16..31)
  static constexpr uint32_t kMemBar = 0xD2000000, kMemLen = 0x1000;  // above virtio-net's BARs
  static constexpr uint16_t kIoBar = 0xC000, kIoLen = 0x100;
  static constexpr uint32_t kTestsPerBar = 3;  // no-eventfd, wildcard-eventfd, datamatch-eventfd
  static constexpr uint8_t kDataMatch = 0xFA, kNoMatch = 0xCE;
  // Header offsets (lib/pci.h's struct pci_test_dev_hdr).
  static constexpr uint64_t kTestOff = 0x00, kWidthOff = 0x01, kOffsetOff = 0x04, kDataOff = 0x08,
                            kCountOff = 0x0C, kNameOff = 0x10;

  enum class Space : uint8_t { mem = 0, io = 1 };  // QEMU's type: the BAR a test belongs to

  // The configuration space for PciBus::insert, and the two BARs for the MMIO and PIO buses.
  std::shared_ptr<PciFunction> function();
  std::shared_ptr<BusDevice> mem_bar();
  std::shared_ptr<BusDevice> io_bar();

  // The BARs' accesses (what mem_bar()/io_bar() forward): offset inside the BAR.
  void bar_read(Space space, uint64_t offset, std::span<uint8_t> data);
  void bar_write(Space space, uint64_t offset, std::span<const uint8_t> data);
  // Configuration space (what function() forwards; PciFunction's contract).
  uint32_t read_config(uint8_t offset);
  void write_config(uint8_t offset, uint32_t value, uint32_t mask);

 private:
  static constexpr int kNone = -1;
  static constexpr uint32_t kTests = 2 * kTestsPerBar;
  static constexpr uint16_t kCommandMask = 0x0007;  // I/O space, memory space, bus master

  // Byte p of the selected test's header and name; 0 where QEMU reads 0. Needs mu_.
  uint8_t header_byte(uint64_t p) const;
  // One byte written at p of the BAR of space. Needs mu_.
  void write_byte(Space space, uint64_t p, uint8_t v);

  std::mutex mu_;
  int current_ = kNone;                    // guarded by mu_: the selected test, 0..5 or kNone
  std::array<uint32_t, kTests> counts_{};  // guarded by mu_
  uint16_t command_ = 0x0003;              // guarded by mu_: decoding on, as firmware leaves it
  uint8_t irq_line_ = 0;                   // guarded by mu_
  std::array<bool, 2> bar_probe_{};        // guarded by mu_: BAR0/1 read back their size mask
};

}  // namespace labyrinth::devices
