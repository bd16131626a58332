// allocator/error.h — the allocator's one error type.
//
// Every fallible allocator call returns std::expected<T, alloc::Error>. Running out
// of pages is a value (Error::exhausted), not an exception and not a null pointer.
#pragma once

#include <cstdint>
#include <string_view>

namespace labyrinth::alloc {

enum class Error : uint8_t {
  // Runtime allocation outcomes.
  exhausted = 1,  // no free page right now (atomic) or pool at its maximum (waiting)
  reserve_only,   // only atomic-reserve pages are left; non-atomic callers may not take them
  timed_out,      // a non-atomic allocation waited its limit for the pool to grow
  // Ownership violations (counted, never fatal).
  double_free,    // the page is already free
  not_owner,      // free or transfer by someone other than the recorded owner
  stale_handle,   // generation mismatch: the handle refers to an earlier life of the page
  out_of_window,  // address or index outside the pool window or not backed by a chunk
  foreign_pool,   // handle belongs to another pool (another VM)
  bad_owner,      // owner id 0 is reserved for "nobody"
  bad_flags,      // unsupported gfp combination
  // Setup and resource errors.
  bad_config,           // invalid pool configuration
  no_cache_slot,        // every per-context cache slot is attached
  pin_failed,           // mmap/mlock of a chunk failed
  hugetlb_unavailable,  // MAP_HUGETLB failed: reserve pages in /proc/sys/vm/nr_hugepages
  map_failed,           // the memslot sink refused the mapping (KVM_SET_USER_MEMORY_REGION)
  at_maximum,           // cannot grow: max_chunks reached
  thread_failed,        // the background worker could not be started
  // Caller errors found on the atomic path (counted like violations).
  bad_handle,  // a handle's gpa/host disagree with its index: forged or corrupted
  bad_cache,   // the cache belongs to another pool, or was detached
};

std::string_view to_string(Error e) noexcept;

}  // namespace labyrinth::alloc
