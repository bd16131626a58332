#include "vmm/memory/pool_sink.h"

namespace labyrinth::vmm {

// The allocator's view of KVM: a chunk becomes one memslot. Errors are already logged
// by Vm with the ioctl's errno; the pool only needs to know the chunk was not mapped.
std::expected<uint32_t, alloc::Error> VmMemslotSink::map(uint64_t gpa, void* host, uint64_t size) {
  auto slot = vm_.add_memslot(gpa, size, host);
  if (!slot) return std::unexpected(alloc::Error::map_failed);
  return *slot;
}

std::expected<void, alloc::Error> VmMemslotSink::unmap(uint32_t slot) {
  if (!vm_.remove_memslot(slot)) return std::unexpected(alloc::Error::map_failed);
  return {};
}

}  // namespace labyrinth::vmm
