// allocator/page.h — what a page is: its size, who may own it, the handle that names it.
//
// The vocabulary every part of the allocator shares (the pool, pinned memory, the C
// interface) without the pool itself: pinned_region.cc needs the page size, page_pool.h
// needs pinned_region.h, and neither includes the other's header for it.
//
//   Page p = pool->alloc_page(kGfpAtomicExclusive, kDeviceOwner, cache).value();
//   std::memset(p.host, 0, kPageSize);   // p.gpa: where the guest sees the same bytes
#pragma once

#include <cstddef>
#include <cstdint>

namespace labyrinth::alloc {

inline constexpr uint64_t kPageSize = 4096;

// GFP-style flags. Every Labyrinth page is exclusive; `atomic` selects the
// never-wait path that may dip into the reserve. Without it (setup paths) a call may
// wait for the pool to grow.
enum Gfp : uint32_t {
  kGfpAtomic = 1u << 0,     // never block, never syscall; may use the atomic reserve
  kGfpExclusive = 1u << 1,  // one recorded owner (required)
};
inline constexpr uint32_t kGfpAtomicExclusive = kGfpAtomic | kGfpExclusive;

// Who owns a page. 0 means nobody; callers choose their own non-zero ids.
using OwnerId = uint32_t;
inline constexpr OwnerId kNoOwner = 0;

// A handle to one allocated page. Copyable; every field is checked on every use, never
// trusted: pool id, index bound, generation (stale_handle), and gpa and host must be
// exactly the page's (bad_handle).
struct Page {
  uint64_t gpa = 0;           // guest-physical address
  std::byte* host = nullptr;  // host mapping of the page (kPageSize bytes)
  uint64_t generation = 0;    // life of the page this handle refers to (< 2^62, see below)
  uint32_t index = 0;         // pool-wide page index
  uint32_t pool_id = 0;       // which pool (VM) issued it
};

// Generations are 62 bits and advance by one per allocation of the page. A handle with
// any bit above them set is rejected as stale. Reviving a stale handle would take 2^62
// lives of one page: 146 years at one allocation per nanosecond.
inline constexpr unsigned kGenerationBits = 62;

}  // namespace labyrinth::alloc
