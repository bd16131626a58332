// vmm/memory/layout.h — the guest-physical memory map of a Labyrinth VM.
//
//   0 ............ min(RAM, 3 GiB)          RAM (low 1 MiB is VMM-owned, see boot_info.h)
//   3 GiB ........ 4 GiB                    MMIO gap (devices, IOAPIC, LAPIC, KVM's TSS)
//   4 GiB ........ 4 GiB + rest of RAM      RAM above the gap
//   align_up(max(RAM end, 4 GiB), 1 GiB)   page-pool window (LABYRINTH_MEM_POOL)
//
//   auto layout = MemoryLayout::compute(512 << 20, /*pool_bytes=*/32 << 20).value();
//   layout.ram      -> {{0, 512 MiB}}
//   layout.pool     -> {4 GiB, 1 GiB}, layout.identity_map_end -> 5 GiB
#pragma once

#include <cstdint>
#include <expected>
#include <vector>

#include "allocator/page.h"
#include "guest/abi/boot_info.h"
#include "vmm/error.h"

namespace labyrinth::vmm {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kPage = alloc::kPageSize;
inline constexpr uint64_t kHugePage = 2 * kMiB;

constexpr uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

struct GpaRange {
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t end() const { return gpa + size; }
};

struct MemoryLayout {
  uint64_t ram_bytes = 0;
  std::vector<GpaRange> ram;      // one range, or two around the MMIO gap
  uint64_t ram_end = 0;           // one past the highest RAM address
  GpaRange pool;                  // page-pool window (size 0: none)
  uint64_t identity_map_end = 0;  // 1 GiB aligned; covers RAM, MMIO gap and pool window

  // ram_bytes: multiple of 2 MiB, > 0. pool_bytes: the pool's maximum size (0: no
  // window); the window is rounded up to whole GiB.
  static std::expected<MemoryLayout, Error> compute(uint64_t ram_bytes, uint64_t pool_bytes);
};

}  // namespace labyrinth::vmm
