#include "vmm/memory/layout.h"

#include <algorithm>

namespace labyrinth::vmm {

std::expected<MemoryLayout, Error> MemoryLayout::compute(uint64_t ram_bytes, uint64_t pool_bytes) {
  // Callers validate sizes (config); these bounds only keep the arithmetic exact.
  if (ram_bytes == 0 || ram_bytes % kHugePage != 0 || ram_bytes > 1024 * kGiB ||
      pool_bytes > 1024 * kGiB) {
    return std::unexpected(Error::boot_layout);
  }
  MemoryLayout l;
  l.ram_bytes = ram_bytes;
  const uint64_t low = std::min<uint64_t>(ram_bytes, LABYRINTH_MMIO_GAP_START);
  l.ram.push_back({0, low});
  l.ram_end = low;
  if (ram_bytes > low) {
    l.ram.push_back({LABYRINTH_MMIO_GAP_END, ram_bytes - low});
    l.ram_end = LABYRINTH_MMIO_GAP_END + (ram_bytes - low);
  }
  uint64_t end = std::max<uint64_t>(l.ram_end, LABYRINTH_MMIO_GAP_END);
  end = align_up(end, kGiB);
  if (pool_bytes > 0) {
    l.pool = {end, align_up(pool_bytes, kGiB)};
    end = l.pool.end();
  }
  l.identity_map_end = end;
  return l;
}

}  // namespace labyrinth::vmm
