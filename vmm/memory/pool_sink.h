// vmm/memory/pool_sink.h — the page pool's window onto KVM: alloc::MemslotSink on a Vm.
//
// Each pool chunk becomes one KVM memory slot whose number comes from the Vm's slot
// allocator, shared with the RAM slots. map/unmap run on the pool's setup path and
// its worker thread; Vm::add/remove_memslot are thread-safe.
//
//   VmMemslotSink sink(*vm);
//   auto pool = alloc::PagePool::create(pool_config, sink);   // sink outlives pool
#pragma once

#include "allocator/memslot_sink.h"
#include "vmm/kvm/vm.h"

namespace labyrinth::vmm {

class VmMemslotSink final : public alloc::MemslotSink {
 public:
  explicit VmMemslotSink(Vm& vm) : vm_(vm) {}
  std::expected<uint32_t, alloc::Error> map(uint64_t gpa, void* host, uint64_t size) override;
  std::expected<void, alloc::Error> unmap(uint32_t slot) override;

 private:
  Vm& vm_;
};

}  // namespace labyrinth::vmm
