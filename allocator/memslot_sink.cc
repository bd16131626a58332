#include "allocator/memslot_sink.h"

#include <algorithm>

namespace labyrinth::alloc {

std::expected<uint32_t, Error> HostOnlySink::map(uint64_t gpa, void* host, uint64_t size) {
  if (host == nullptr || size == 0 || gpa + size < gpa) return std::unexpected(Error::map_failed);
  std::lock_guard lock(mu_);
  for (const Range& r : slots_) {
    if (r.size != 0 && gpa < r.gpa + r.size && r.gpa < gpa + size) {
      return std::unexpected(Error::map_failed);  // overlaps a mapped range, as KVM refuses
    }
  }
  auto it = std::find_if(slots_.begin(), slots_.end(), [](const Range& r) { return r.size == 0; });
  if (it == slots_.end()) {
    if (slots_.size() >= max_slots_) return std::unexpected(Error::map_failed);
    it = slots_.insert(slots_.end(), Range{});
  }
  *it = Range{gpa, size};
  return static_cast<uint32_t>(it - slots_.begin());
}

std::expected<void, Error> HostOnlySink::unmap(uint32_t slot) {
  std::lock_guard lock(mu_);
  if (slot >= slots_.size() || slots_[slot].size == 0) return std::unexpected(Error::map_failed);
  slots_[slot] = Range{};
  return {};
}

uint32_t HostOnlySink::mapped() const {
  std::lock_guard lock(mu_);
  return static_cast<uint32_t>(
      std::count_if(slots_.begin(), slots_.end(), [](const Range& r) { return r.size != 0; }));
}

}  // namespace labyrinth::alloc
