// allocator/kvm/kvm_fd_sink.h — a MemslotSink on a raw KVM VM fd (target labyrinth_allocator_kvm).
//
//   KvmFdMemslotSink sink(vm_fd, /*first_slot=*/8, /*slot_count=*/64);
//   auto pool = PagePool::create(config, sink);   // chunks become KVM memslots
//
// The allocator's core library needs no KVM; this small target adds the one sink that
// talks to it directly, for the C API's labyrinth_pool_create(vm_fd, ...) and for tests
// in which a guest must really read pool memory. The VMM uses its own sink on its Vm.
#pragma once

#include <cstdint>
#include <expected>
#include <mutex>
#include <vector>

#include "allocator/error.h"
#include "allocator/memslot_sink.h"

namespace labyrinth::alloc {

// KVM_SET_USER_MEMORY_REGION on a VM fd it does not own, using slot numbers
// [first_slot, first_slot + slot_count). Thread-safe (a mutex guards the slot table).
class KvmFdMemslotSink final : public MemslotSink {
 public:
  KvmFdMemslotSink(int vm_fd, uint32_t first_slot, uint32_t slot_count);
  std::expected<uint32_t, Error> map(uint64_t gpa, void* host, uint64_t size) override;
  std::expected<void, Error> unmap(uint32_t slot) override;

 private:
  int vm_fd_;
  uint32_t first_slot_;
  std::mutex mu_;              // guards used_
  std::vector<uint8_t> used_;  // per slot in range: mapped?
  std::vector<uint64_t> gpa_;  // per slot: where it is mapped (for unmap)
};

}  // namespace labyrinth::alloc
