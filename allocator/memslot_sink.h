// allocator/memslot_sink.h — the narrow interface through which the pool reaches KVM.
//
// The allocator never includes vmm/. Each chunk of the pool is pinned host memory
// that must appear in the guest at a fixed guest-physical address; the pool asks its
// sink to make that so, and to undo it when the chunk is given back.
//
//   class MySink : public MemslotSink { ... };        // vmm/ implements it on its Vm
//   auto pool = PagePool::create(config, my_sink);     // the pool calls map/unmap
//
// KvmFdMemslotSink is the minimal implementation on a raw KVM VM fd (used by the C
// API and the allocator's own tests); it owns a contiguous range of slot numbers.
#pragma once

#include <cstdint>
#include <expected>
#include <mutex>
#include <vector>

#include "allocator/error.h"

namespace labyrinth::alloc {

class MemslotSink {
 public:
  virtual ~MemslotSink() = default;
  // Maps [host, host + size) at guest-physical gpa. Returns an opaque slot token.
  // Called from the pool's setup path and its background worker, never the atomic path.
  virtual std::expected<uint32_t, Error> map(uint64_t gpa, void* host, uint64_t size) = 0;
  // Removes a mapping made by map(). After it returns the guest no longer reaches the memory.
  virtual std::expected<void, Error> unmap(uint32_t slot) = 0;
};

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
