// vmm/pc_testdev_host.h — the VMM's side of pc-testdev (devices/legacy/pc_testdev.h):
// its interrupt lines set GSI levels through KVM_IRQ_LINE, its flush port drops the host
// mapping of one guest page so that KVM's MMU must fault it in again.
//
//   PcTestdevHostImpl host(*vm, *memory);   // must not outlive either
//   devices::PcTestdev dev(host);
//
// The flush is QEMU's way: mprotect the page to PROT_NONE and back, which invalidates
// KVM's mapping of it (an MMU-notifier event). For that instant any host thread touching
// the page would fault, which is why pc-testdev is only on a VM that asks for it
// (labyrinth.pc_testdev) and such a VM has no NIC copying into guest RAM (the config
// refuses the combination).
#pragma once

#include "devices/legacy/pc_testdev.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"

namespace labyrinth::vmm {

class PcTestdevHostImpl final : public devices::PcTestdevHost {
 public:
  PcTestdevHostImpl(Vm& vm, const GuestMemory& memory) : vm_(vm), memory_(memory) {}
  void set_irq_level(uint32_t line, bool level) override;
  void flush_page(uint64_t gpa) override;

 private:
  Vm& vm_;
  const GuestMemory& memory_;
};

}  // namespace labyrinth::vmm
