// allocator/memslot_sink.h — the narrow interface through which the pool maps its chunks.
//
// The allocator never includes vmm/ and needs no KVM. Each chunk of the pool is pinned
// host memory that may have to appear in a guest at a fixed guest-physical address; the
// pool asks its sink to make that so, and to undo it when the chunk is given back.
//
//   class MySink : public MemslotSink { ... };        // vmm/ implements it on its Vm
//   auto pool = PagePool::create(config, my_sink);     // the pool calls map/unmap
//
//   HostOnlySink host;                                 // no guest at all: a host-only
//   auto pool = PagePool::create(config, host);        // pool (userspace device, tests)
//
// Implementations: HostOnlySink (below, here), KvmFdMemslotSink on a raw KVM VM fd
// (allocator/kvm/, its own library target labyrinth_allocator_kvm), VmMemslotSink (vmm/).
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

// A sink for a pool that no guest sees: the pool still pins every chunk (that is the
// pool's job, not the sink's), the sink maps nothing and only keeps the books — which
// guest-physical ranges are "mapped", so that overlapping or unknown requests are refused
// exactly as KVM would refuse them. Uses: a host-only page pool for a userspace device
// (pages addressed by Page::host, gpa is a pool-local address), and every allocator test
// and benchmark that does not need a guest to read the memory. Thread-safe (mu_).
class HostOnlySink final : public MemslotSink {
 public:
  explicit HostOnlySink(uint32_t max_slots = 512) : max_slots_(max_slots) {}
  std::expected<uint32_t, Error> map(uint64_t gpa, void* host, uint64_t size) override;
  std::expected<void, Error> unmap(uint32_t slot) override;
  // Ranges currently mapped (for tests and diagnostics).
  uint32_t mapped() const;

 private:
  struct Range {
    uint64_t gpa = 0;
    uint64_t size = 0;  // 0: slot unused
  };
  uint32_t max_slots_;
  mutable std::mutex mu_;     // guards slots_
  std::vector<Range> slots_;  // index = slot token
};

}  // namespace labyrinth::alloc
