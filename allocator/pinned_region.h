// allocator/pinned_region.h — RAII for pinned (pre-faulted, mlock'ed) anonymous memory.
//
//   auto r = PinnedRegion::create(2 << 20, Backing::small_pages);  // expected<PinnedRegion, Error>
//   std::byte* p = r->data();   // resident and locked: touching it never faults
//
// The chunks of the page pool and all of the pool's metadata live in such regions, which
// is what lets the atomic allocation path promise "no page fault".
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>

#include "allocator/error.h"

namespace labyrinth::alloc {

// How a chunk of pool memory is backed (PoolConfig::backing).
enum class Backing : uint8_t {
  small_pages,  // 4 KiB pages (default)
  thp,          // transparent huge pages (madvise MADV_HUGEPAGE), chunk must be 2 MiB aligned
  hugetlb,      // hugetlbfs 2 MiB pages (MAP_HUGETLB); needs /proc/sys/vm/nr_hugepages
};

class PinnedRegion {
 public:
  // bytes must be a multiple of 4 KiB (of 2 MiB for thp/hugetlb).
  static std::expected<PinnedRegion, Error> create(size_t bytes, Backing backing);
  // The same, placed at addr inside a VaReservation (addr 2 MiB aligned for thp/hugetlb).
  // Destroying it gives the memory back and leaves the range reserved again.
  static std::expected<PinnedRegion, Error> create_at(std::byte* addr, size_t bytes,
                                                      Backing backing);

  PinnedRegion() = default;
  PinnedRegion(PinnedRegion&& other) noexcept;
  PinnedRegion& operator=(PinnedRegion&& other) noexcept;
  PinnedRegion(const PinnedRegion&) = delete;
  PinnedRegion& operator=(const PinnedRegion&) = delete;
  ~PinnedRegion();

  std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  PinnedRegion(std::byte* data, size_t size, size_t map_size)
      : data_(data), size_(size), map_size_(map_size), map_base_(data) {}
  void reset() noexcept;
  bool fixed_ = false;  // inside a VaReservation: reset re-reserves instead of unmapping
  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t map_size_ = 0;            // what was mmap'ed (THP over-allocates to align)
  std::byte* map_base_ = nullptr;  // start of the mmap'ed range
};

// An address range reserved without memory (PROT_NONE, MAP_NORESERVE) in which pinned
// regions are placed at fixed offsets: the pool maps chunk c at data() + c * chunk_bytes,
// so a page's host address is arithmetic on its index (no table load on the atomic path),
// and a stale pointer into a removed chunk faults instead of reaching another mapping.
class VaReservation {
 public:
  static std::expected<VaReservation, Error> create(size_t bytes, size_t align);
  VaReservation() = default;
  VaReservation(VaReservation&& other) noexcept;
  VaReservation& operator=(VaReservation&& other) noexcept;
  VaReservation(const VaReservation&) = delete;
  VaReservation& operator=(const VaReservation&) = delete;
  ~VaReservation();
  std::byte* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  std::byte* map_base_ = nullptr;
  size_t map_size_ = 0;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Small objects that the atomic path dereferences (the pool object, its Impl, the C API's
// handles) come from here: a private anonymous mapping, pre-faulted and mlock'ed, rounded
// up to whole pages. Returns nullptr on failure. pinned_free takes the same byte count.
void* pinned_alloc(size_t bytes) noexcept;
void pinned_free(void* p, size_t bytes) noexcept;

}  // namespace labyrinth::alloc
