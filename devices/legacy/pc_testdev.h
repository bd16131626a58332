// devices/legacy/pc_testdev.h — QEMU's pc-testdev (hw/misc/pc-testdev.c), the ISA test
// device kvm-unit-tests' x86 tests use (`-device pc-testdev`: emulator, ioapic, eventinj).
//
// Its contract, as the tests read it:
//   * PcTestdevPorts at 0xE0, 12 ports:
//       0xE0-0xE3  a 32-bit scratch register: an access of W bytes at offset O reads or
//                  writes the register's bytes O..O+W-1 (bytes past the 4th are dropped
//                  on write, read as 0);
//       0xE4-0xE7  "flush page": a 32-bit OUT of a guest-physical address makes the host
//                  drop its mapping of that 4 KiB page (PcTestdevHost::flush_page), so the
//                  guest's next access faults into KVM again; other widths are ignored;
//       0xE8-0xEB  the same scratch register, taken a byte at a time.
//   * PcTestdevIrqLines at 0x2000, 24 ports: a 1-byte OUT of V to 0x2000 + N sets the
//     level of ISA/GSI line N (0..23, the IOAPIC's pins) to V != 0
//     (PcTestdevHost::set_irq_level); other widths are ignored. Level, not edge: the
//     ioapic test raises a line, checks the Remote IRR, then lowers it.
//   * PcTestdevIomem at 0xFF000000, 64 KiB of MMIO scratch memory: reads return what was
//     written (zero at first); the emulator test runs its instructions against it.
// The devices check every offset and width against their range (the bus already
// guarantees the access lies inside it); reads of the ports not listed return 0.
//
//   PcTestdev dev(host);
//   pio.insert(dev.ports(), PcTestdev::kPortBase, PcTestdev::kPortLen);
//   pio.insert(dev.irq_lines(), PcTestdev::kIrqBase, PcTestdev::kIrqLen);
//   mmio.insert(dev.iomem(), PcTestdev::kIomemBase, PcTestdev::kIomemLen);
//
// Thread-safety: vCPU threads call in concurrently; each part has its own mutex (a leaf:
// PcTestdevHost's calls are made outside it). Order: Bus::devices_mu_ -> <part>::mu_.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

// What the device asks of the VMM (vmm/ implements it on KVM and guest memory).
class PcTestdevHost {
 public:
  virtual ~PcTestdevHost() = default;
  // Sets GSI line's level (line < PcTestdev::kIrqLen). Thread-safe.
  virtual void set_irq_level(uint32_t line, bool level) = 0;
  // Drops the host mapping of the 4 KiB page at gpa (page-aligned, untrusted: the VMM
  // checks it lies in RAM and ignores it otherwise). Thread-safe.
  virtual void flush_page(uint64_t gpa) = 0;
};

class PcTestdevPorts final : public BusDevice {
 public:
  explicit PcTestdevPorts(PcTestdevHost& host) : host_(host) {}
  std::string_view label() const override { return "pc-testdev"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PcTestdevHost& host_;
  std::mutex mu_;
  std::array<uint8_t, 4> reg_{};  // guarded by mu_; the scratch register, little endian
};

class PcTestdevIrqLines final : public BusDevice {
 public:
  explicit PcTestdevIrqLines(PcTestdevHost& host) : host_(host) {}
  std::string_view label() const override { return "pc-testdev-irq-line"; }
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  PcTestdevHost& host_;
};

class PcTestdevIomem final : public BusDevice {
 public:
  static constexpr uint64_t kLen = 0x10000;
  std::string_view label() const override { return "pc-testdev-iomem"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::mutex mu_;
  std::array<uint8_t, kLen> mem_{};  // guarded by mu_
};

// The three parts, made together for one VM.
class PcTestdev {
 public:
  static constexpr uint64_t kPortBase = 0xE0, kPortLen = 12;
  static constexpr uint64_t kFlushOffset = 4, kByteRegOffset = 8;
  static constexpr uint64_t kIrqBase = 0x2000, kIrqLen = 24;
  static constexpr uint64_t kIomemBase = 0xFF000000, kIomemLen = PcTestdevIomem::kLen;

  explicit PcTestdev(PcTestdevHost& host)
      : ports_(std::make_shared<PcTestdevPorts>(host)),
        irq_lines_(std::make_shared<PcTestdevIrqLines>(host)),
        iomem_(std::make_shared<PcTestdevIomem>()) {}
  std::shared_ptr<PcTestdevPorts> ports() const { return ports_; }
  std::shared_ptr<PcTestdevIrqLines> irq_lines() const { return irq_lines_; }
  std::shared_ptr<PcTestdevIomem> iomem() const { return iomem_; }

 private:
  std::shared_ptr<PcTestdevPorts> ports_;
  std::shared_ptr<PcTestdevIrqLines> irq_lines_;
  std::shared_ptr<PcTestdevIomem> iomem_;
};

}  // namespace labyrinth::devices
