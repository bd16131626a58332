// vmm/kvm/coalesced_pio.h — port writes KVM queues instead of exiting
// (KVM_REGISTER_COALESCED_MMIO with pio = 1), replayed onto the port bus in order before
// any exit is dispatched.
//
// Why: a PCI configuration access is two port accesses, OUT 0xCF8 (CONFIG_ADDRESS)
// then IN/OUT 0xCFC (CONFIG_DATA), each a userspace exit. A write to CONFIG_ADDRESS
// does nothing until the next access to the configuration ports, so KVM may queue it
// in the coalesced ring (a page of the vCPU mmap, one ring per VM) and let the guest
// run on; the data access exits, and the runner replays the ring before it. Linux's
// AGP aperture search reads the class of slot 0 of every device on buses 0-255 (8,192
// reads, twice per boot on the AMD families with a GART): half of its exits go. QEMU's
// pc machines coalesce CONFIG_ADDRESS the same way.
//
// Only KVM writes the ring; its indexes and entry lengths are still checked (replay
// stops at a bad index, skips a bad entry, and both are counted), each entry is
// replayed once. Thread-safety: replay() may run on every vCPU thread at once (mu_).
//
//   auto c = CoalescedPio::create(*vm, *vcpus[0], {{0xCF8, 4}}).value();
//   c->replay(pio_bus);   // on each vCPU thread, before dispatching an exit
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <mutex>
#include <span>

#include "devices/bus/bus.h"
#include "vmm/error.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"

namespace labyrinth::vmm {

class CoalescedPio {
 public:
  struct Zone {
    uint16_t port;
    uint32_t len;
  };
  // Registers each zone (pio) and maps the ring through vcpu's mmap.
  // Error::kvm_missing_cap when KVM has no coalesced PIO (Linux < 4.20).
  static std::expected<std::unique_ptr<CoalescedPio>, Error> create(Vm& vm, const Vcpu& vcpu,
                                                                    std::span<const Zone> zones);
  // A ring laid out as KVM's (struct kvm_coalesced_mmio_ring) in page, one page long.
  explicit CoalescedPio(std::span<std::byte> page) : page_(page) {}

  // Writes every queued entry to pio, oldest first, and frees its slot. Cheap when the
  // ring is empty (two loads, no lock).
  void replay(const devices::Bus& pio);

  uint64_t replayed() const noexcept { return replayed_.load(std::memory_order_relaxed); }
  uint64_t rejected() const noexcept { return rejected_.load(std::memory_order_relaxed); }
  // Entries the ring holds: (page size - header) / entry size, as KVM computes it.
  uint32_t capacity() const noexcept;

 private:
  std::span<std::byte> page_;
  std::mutex mu_;  // one replayer at a time: entries stay in order. Leaf lock (the bus's
                   // device locks are taken under it, as on any exit).
  std::atomic<uint64_t> replayed_{0}, rejected_{0};  // relaxed: statistics
};

}  // namespace labyrinth::vmm
