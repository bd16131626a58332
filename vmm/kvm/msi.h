// vmm/kvm/msi.h — MSI interrupts for devices: one GSI, one routing entry, one irqfd each.
//
//   MsiRouter router(*vm);                          // owns the VM's GSI routing table
//   auto irq = MsiIrq::create(*vm, router).value(); // a devices::MsiLine
//   irq->configure(0xFEE00000, 0x40);              // the guest's MSI message -> route
//   irq->trigger();                                // eventfd write: KVM injects inline
//
// KVM_SET_GSI_ROUTING replaces the whole table, so the router keeps it: the default
// IOAPIC/PIC pins (GSI 0-23) plus one MSI entry per configured device GSI (24+).
// An MSI irqfd is injected directly from the eventfd wake-up (no work queue), the
// fastest way into the guest. configure() runs on vCPU threads (register writes):
// mu_ guards the table; it is a leaf lock (only the KVM ioctl runs under it).
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <mutex>

#include "devices/msi_line.h"
#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/vm.h"

namespace labyrinth::vmm {

class MsiRouter {
 public:
  explicit MsiRouter(Vm& vm) : vm_(vm) {}
  uint32_t allocate_gsi();  // 24, 25, ...
  // Sets (or replaces) gsi's MSI message and rewrites the table.
  std::expected<void, Error> set_msi(uint32_t gsi, uint64_t address, uint32_t data);

 private:
  Vm& vm_;
  std::mutex mu_;  // guards routes_, next_gsi_
  std::map<uint32_t, kvm_irq_routing_entry> routes_;
  uint32_t next_gsi_ = 24;
};

class MsiIrq final : public devices::MsiLine {
 public:
  static std::expected<std::unique_ptr<MsiIrq>, Error> create(Vm& vm, MsiRouter& router);
  ~MsiIrq() override;
  bool configure(uint64_t address, uint32_t data) override;
  void trigger() override;
  uint32_t gsi() const { return gsi_; }

 private:
  MsiIrq(Vm& vm, MsiRouter& router, uint32_t gsi, Fd fd)
      : vm_(vm), router_(router), gsi_(gsi), fd_(std::move(fd)) {}
  Vm& vm_;
  MsiRouter& router_;
  uint32_t gsi_;
  Fd fd_;
  std::atomic<bool> registered_{false};  // irqfd bound (after the first good configure)
  std::mutex mu_;                        // serialises configure(); leaf after MsiRouter::mu_
};

}  // namespace labyrinth::vmm
