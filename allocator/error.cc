#include "allocator/error.h"

namespace labyrinth::alloc {

std::string_view to_string(Error e) noexcept {
  switch (e) {
    case Error::exhausted:
      return "no free page (pool exhausted)";
    case Error::reserve_only:
      return "only atomic-reserve pages left";
    case Error::timed_out:
      return "timed out waiting for the pool to grow";
    case Error::double_free:
      return "double free";
    case Error::not_owner:
      return "caller does not own the page";
    case Error::stale_handle:
      return "stale page handle (generation mismatch)";
    case Error::out_of_window:
      return "address outside the pool window or its live chunks";
    case Error::foreign_pool:
      return "page belongs to another pool";
    case Error::bad_owner:
      return "owner id 0 is reserved";
    case Error::bad_flags:
      return "unsupported gfp flags (exclusive is required)";
    case Error::bad_config:
      return "invalid pool configuration";
    case Error::no_cache_slot:
      return "no free per-context cache slot";
    case Error::pin_failed:
      return "could not pin chunk memory (mmap/mlock failed)";
    case Error::hugetlb_unavailable:
      return "no 2 MiB hugetlbfs pages reserved (raise /proc/sys/vm/nr_hugepages)";
    case Error::map_failed:
      return "the memslot sink refused the mapping (KVM_SET_USER_MEMORY_REGION)";
    case Error::at_maximum:
      return "pool is at max_chunks";
    case Error::thread_failed:
      return "could not start the pool worker";
    case Error::bad_handle:
      return "page handle's address fields disagree with its index (forged or corrupted)";
    case Error::bad_cache:
      return "cache belongs to another pool or was detached";
  }
  return "unknown allocator error";
}

}  // namespace labyrinth::alloc
