// vmm/kvm/vm.h — one KVM virtual machine: its fd, memory slots and interrupt plumbing.
//
//   auto vm = Vm::create(kvm).value();              // VM + TSS + IOAPIC/PIC + PIT2
//   uint32_t slot = vm->add_memslot(0, size, host).value();
//   vm->register_irqfd(efd, /*gsi=*/4);             // efd writes raise GSI 4
//   vm->remove_memslot(slot);
//
// Memory slot numbers come from one allocator per VM, shared by RAM and the page
// pool's chunks (vmm/memory/pool_sink.h), so both can add slots at any time.
// Thread-safety: add/remove_memslot may be called from any thread (slots_mu_).
//
// Teardown: each deregistration (a memslot deleted, an irqfd or ioeventfd deassigned)
// makes KVM wait for an SRCU grace period or flush a workqueue — from nothing to over a
// second each on a loaded or emulated host, and dozens of them in a Linux guest's
// teardown. The owner of a whole VM calls begin_teardown() once no vCPU runs any more;
// from then on the remove/unregister calls only do the bookkeeping, and closing the VM
// fd (~Vm) releases every slot, irqfd and ioeventfd in one go.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/kvm.h"

namespace labyrinth::vmm {

// Slot numbers [0, capacity): lowest free first.
class SlotAllocator {
 public:
  explicit SlotAllocator(uint32_t capacity) : used_(capacity, false) {}
  std::optional<uint32_t> allocate();
  bool release(uint32_t slot);  // false when slot was not allocated
  bool is_used(uint32_t slot) const { return slot < used_.size() && used_[slot]; }
  uint32_t in_use() const noexcept { return in_use_; }

 private:
  std::vector<bool> used_;
  uint32_t in_use_ = 0;
};

class Vm {
 public:
  // KVM_CREATE_VM, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP, and
  // KVM_CREATE_PIT2 unless pit is false (ports 0x40-0x43 then reach the VMM's bus, which
  // maps nothing there: reads all-ones, as on QEMU's -machine pit=off).
  static std::expected<std::unique_ptr<Vm>, Error> create(const Kvm& kvm, bool pit = true);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const Kvm& kvm() const noexcept { return kvm_; }

  // KVM_SET_USER_MEMORY_REGION on a newly allocated slot. gpa, size and host must be
  // 4 KiB aligned. Returns the slot number.
  std::expected<uint32_t, Error> add_memslot(uint64_t gpa, uint64_t size, void* host);
  // Deletes the slot (size 0) and frees its number.
  std::expected<void, Error> remove_memslot(uint32_t slot);
  uint32_t memslots_in_use() const;

  // No vCPU runs and the VM is about to close: deregistrations stop calling into KVM
  // (see the header comment). Irreversible; thread-safe.
  void begin_teardown() noexcept { tearing_down_.store(true, std::memory_order_release); }
  bool tearing_down() const noexcept { return tearing_down_.load(std::memory_order_acquire); }

  // KVM_IRQFD: a write to efd raises (edge) GSI gsi on the in-kernel irqchip.
  std::expected<void, Error> register_irqfd(int efd, uint32_t gsi);
  std::expected<void, Error> unregister_irqfd(int efd, uint32_t gsi);
  // KVM_IRQ_LINE: sets GSI gsi's level on the in-kernel irqchip (a line that stays up
  // until lowered, as level-triggered IOAPIC pins need; an irqfd only pulses).
  std::expected<void, Error> set_irq_line(uint32_t gsi, bool level);
  // KVM_IOEVENTFD: a guest write of len bytes at addr (port if pio) signals efd
  // without a userspace exit; datamatch restricts it to one value.
  std::expected<void, Error> register_ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                                std::optional<uint64_t> datamatch);
  std::expected<void, Error> unregister_ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                                  std::optional<uint64_t> datamatch);
  // KVM_GET_IRQCHIP / KVM_SET_IRQCHIP for the two in-kernel PICs (master, slave).
  std::expected<std::pair<kvm_pic_state, kvm_pic_state>, Error> pics() const;
  std::expected<void, Error> set_pics(const std::pair<kvm_pic_state, kvm_pic_state>& pics);
  // KVM_GET_PIT2 / KVM_SET_PIT2 (a VM created with its PIT).
  std::expected<kvm_pit_state2, Error> pit() const;
  std::expected<void, Error> set_pit(const kvm_pit_state2& pit);
  // KVM_SET_GSI_ROUTING: replaces the whole routing table.
  std::expected<void, Error> set_gsi_routing(std::span<const kvm_irq_routing_entry> entries);
  // The default x86 table written out: GSI 0-15 to PIC and IOAPIC pin, 16-23 IOAPIC.
  static std::vector<kvm_irq_routing_entry> default_gsi_routing();

  // TSS area KVM needs inside the MMIO gap (3 pages) and the EPT identity page.
  static constexpr uint64_t kTssAddr = 0xFFFBD000;
  static constexpr uint64_t kIdentityMapAddr = 0xFFFBC000;

 private:
  Vm(const Kvm& kvm, Fd fd) : kvm_(kvm), fd_(std::move(fd)), slots_(kvm.max_memslots()) {}
  std::expected<void, Error> ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                       std::optional<uint64_t> datamatch, bool deassign);

  const Kvm& kvm_;
  Fd fd_;
  mutable std::mutex slots_mu_;  // guards slots_; leaf lock (nothing is called under it
                                 // except the KVM ioctl)
  SlotAllocator slots_;
  std::atomic<bool> tearing_down_{false};
};

}  // namespace labyrinth::vmm
