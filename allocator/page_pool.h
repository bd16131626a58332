// allocator/page_pool.h — the per-VM guest-page pool with GFP_ATOMIC + exclusive pages.
//
// A PagePool hands out 4 KiB guest-physical pages from pinned host memory that is
// mapped into one VM's pool window, one KVM memslot per chunk. An emulated device's
// interrupt path takes a page *now* (no syscall, no lock, no fault; immediate typed
// failure when none is free) and owns it alone until it transfers or frees it.
//
//   KvmFdMemslotSink sink(vm_fd, /*first_slot=*/8, /*slot_count=*/64);  // or HostOnlySink
//   PoolConfig cfg{.window_gpa = 4_GiB, .window_size = 1_GiB};
//   auto pool = PagePool::create(cfg, sink).value();   // may fail: bad config, pin, map
//   PageCache* rx = pool->attach_cache().value();      // one per context (event loop, vCPU)
//   if (auto page = pool->alloc_page(kGfpAtomicExclusive, kDeviceOwner, rx)) {
//     copy_frame(page->host, len);                      // zeroed, owned by kDeviceOwner
//     pool->transfer(*page, kDeviceOwner, kGuestOwner); // device -> guest driver
//   } else {
//     count_drop(page.error());                         // Error::exhausted: drop the frame
//   }
//   ...
//   // An untrusted guest returns a page by address: one CAS checks that it owns it now.
//   if (auto back = pool->transfer_gpa(gpa_the_guest_returned, kGuestOwner, kDeviceOwner)) {
//     pool->free_page(*back, kDeviceOwner, rx);
//   }
//
// Structure (details in pool_layout.h; code in page_pool.cc, pool_worker.cc, pool_stats.cc):
//   descriptors  one 64-bit atomic word per page {state, generation, owner}; every
//                ownership change is a CAS on it, so a double/foreign/stale free loses
//                the CAS and is reported, never corrupts anything.
//   PageCache    per-context pair of magazines (arrays of cache_capacity/2 clean page
//                indices: a loaded one and a previous one, full or empty, as in Bonwick's
//                magazine allocator) plus a single-producer ring of freed (dirty) pages
//                that the worker drains; lives in pinned memory, with copies of the
//                pool's constants. The fast path touches only the cache's first two
//                lines, its loaded magazine (or ring) and the page descriptor.
//   depot        a lock-free stack of FULL magazines (a refill or a flush moves a whole
//                magazine in one CAS, no linked walk), a stack of empty ones, one
//                lock-free stack of loose clean pages per chunk (fresh chunks, odd
//                remainders), and one atomic word counting unclaimed full magazines and
//                loose pages (allocators claim before popping, which is how the atomic
//                reserve and exhaustion are decided). That word and the two magazine
//                stacks' heads share one cache line: a magazine exchange moves one line
//                between the cores, not three.
//   dirty list   lock-free stack of freed pages awaiting zeroing by the worker.
//   worker       background thread: zeroes dirty pages, grows the pool below the low
//                watermark (new chunk = new memslot) up to max_chunks — and by a chunk
//                whenever atomic allocations failed since its last pass —, gives back
//                fully free chunks that stayed above the high watermark (shrink_delay).
// All metadata is allocated once at create() in mlock'ed, pre-faulted memory, so the
// atomic path touches nothing that can fault.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>

#include "allocator/error.h"
#include "allocator/memslot_sink.h"
#include "allocator/page.h"
#include "allocator/pinned_region.h"

namespace labyrinth::alloc {

std::string_view to_string(Backing b) noexcept;

enum class ZeroPolicy : uint8_t {
  worker,   // free() queues the page as dirty; the worker zeroes it (default: nothing on the
            // alloc or free path costs more than a CAS and an array store)
  on_free,  // free() zeroes the page on the freeing thread and recycles it into its cache
};

struct PoolConfig {
  uint64_t window_gpa = 0;         // pool window base: 1 GiB aligned, at or above 4 GiB
  uint64_t window_size = 0;        // bytes; >= max_chunks * chunk_bytes
  uint64_t chunk_bytes = 2 << 20;  // multiple of 4 KiB (of 2 MiB for thp/hugetlb)
  uint32_t initial_chunks = 1;
  uint32_t max_chunks = 16;
  // Watermarks in pages of clean free memory in the depot.
  uint32_t min_pages = 64;     // below: only atomic allocations (the atomic reserve)
  uint32_t low_pages = 256;    // below: the worker grows the pool
  uint32_t high_pages = 1024;  // the worker grows up to here; gives back chunks well above it
  Backing backing = Backing::small_pages;
  ZeroPolicy zero_policy = ZeroPolicy::worker;
  uint32_t max_caches = 16;      // per-context caches that may be attached at once
  uint32_t cache_capacity = 64;  // pages a cache holds: two magazines of capacity/2 each;
                                 // a refill or flush moves one magazine (1 in capacity/2 ops)
  // Per-cache ring of freed pages for the worker (ZeroPolicy::worker); power of two >=
  // cache_capacity. It must hold what one context frees between two worker passes
  // (worker_poll): 4096 covers 8 M frees/s at 500 us. Beyond it, frees spill to the
  // shared dirty list (two more atomic read-modify-writes each).
  uint32_t dirty_ring = 4096;
  bool start_worker = true;  // false: the caller runs the worker: run_worker() on a thread
                             // of its own (the VMM, vmm/memory/pool_worker.h), or steps it
                             // with run_worker_once() (tests, benchmarks, fuzzers)
  bool shrink = true;        // worker gives back fully free chunks above high watermark
  // ... but only once the depot has stayed above high + one chunk this long (hysteresis:
  // a memslot add/remove costs ~0.2 ms here and invalidates shadow page tables).
  std::chrono::milliseconds shrink_delay{1000};
  std::chrono::microseconds worker_poll{500};   // worker wake-up period when idle
  std::chrono::milliseconds wait_timeout{200};  // non-atomic allocation's longest wait
};

// Counters. Monotonic unless noted; a snapshot is consistent per field, not across fields.
struct PoolStats {
  // Allocation by path.
  uint64_t alloc_cache = 0;    // atomic allocations served from a per-context cache
  uint64_t alloc_depot = 0;    // ... that refilled the cache from the depot first
  uint64_t alloc_reserve = 0;  // ... that dipped below the min watermark (atomic reserve)
  uint64_t alloc_wait = 0;     // non-atomic allocations
  uint64_t alloc_waited = 0;   // ... that had to wait for the worker
  // Non-atomic allocations that found no page and began to wait, counted as the wait
  // begins (once per allocation): alloc_waited counts those that then got a page; the
  // rest end in a failure or are waiting now.
  uint64_t alloc_wait_began = 0;
  // Failures by reason.
  uint64_t fail_exhausted = 0;
  uint64_t fail_reserve_only = 0;  // non-atomic caller refused the reserve (returned at once)
  uint64_t fail_timed_out = 0;
  // Ownership.
  uint64_t frees = 0;
  uint64_t transfers = 0;
  uint64_t violation_double_free = 0;
  uint64_t violation_not_owner = 0;
  uint64_t violation_stale = 0;
  uint64_t violation_out_of_window = 0;
  uint64_t violation_foreign_pool = 0;
  uint64_t violation_bad_handle = 0;  // gpa/host of a handle disagree with its index
  uint64_t violation_bad_cache = 0;   // another pool's cache, or a detached one
  // Depot traffic.
  uint64_t cache_refills = 0;
  uint64_t cache_flushes = 0;
  // Worker.
  uint64_t pages_zeroed = 0;
  uint64_t chunks_added = 0;
  uint64_t chunks_removed = 0;
  uint64_t grow_failures = 0;
  uint64_t unmap_failures = 0;    // KVM refused to drop a chunk's memslot (chunk kept)
  uint64_t grow_on_failure = 0;   // chunks added because atomic allocations had failed
  uint64_t below_low_events = 0;  // watermark crossings seen by the worker
  uint64_t below_min_events = 0;
  // Gauges (current values).
  uint64_t chunks = 0;
  uint64_t chunks_high_water = 0;  // most chunks ever mapped at once (never > max_chunks)
  uint64_t total_pages = 0;
  uint64_t free_clean = 0;  // unclaimed clean pages in the depot (full magazines + loose)
  uint64_t free_dirty = 0;  // freed pages waiting for the worker (shared list + cache rings)
  uint64_t in_use = 0;      // allocated pages (owned by someone)

  uint64_t violations() const {
    return violation_double_free + violation_not_owner + violation_stale + violation_out_of_window +
           violation_foreign_pool + violation_bad_handle + violation_bad_cache;
  }
};

class PageCache;  // opaque per-context cache (pool_layout.h)

class PagePool {
 public:
  // Validates cfg, pins and maps cfg.initial_chunks chunks through sink, starts the
  // worker. The sink must outlive the pool.
  static std::expected<std::unique_ptr<PagePool>, Error> create(const PoolConfig& cfg,
                                                                MemslotSink& sink);
  ~PagePool();  // stops the worker, unmaps every memslot, unpins every chunk
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;
  // The pool object itself lives in pinned memory (mmap + mlock), like everything the
  // atomic path reads: a heap page could be swapped out and fault. Throws bad_alloc.
  static void* operator new(std::size_t bytes);
  static void operator delete(void* p, std::size_t bytes) noexcept;

  // Per-context caches. attach/detach are setup calls (may lock); a cache is used
  // by one thread at a time. detach flushes its pages back to the depot; a detached
  // cache (or another pool's) is refused with Error::bad_cache, counted.
  std::expected<PageCache*, Error> attach_cache();
  void detach_cache(PageCache* cache);

  // flags must include kGfpExclusive. With kGfpAtomic: no syscall, lock or fault;
  // returns a zeroed page or Error::exhausted immediately. Without it (setup paths):
  // never takes the atomic reserve (the last min_pages clean pages). When no page above
  // the reserve is free:
  //   pool below max_chunks  -> waits up to wait_timeout for the worker to grow it or for
  //                             freed pages to be zeroed; then Error::timed_out;
  //   pool at max_chunks     -> no growth can come: fails at once with
  //                             Error::reserve_only if reserve pages are free (only atomic
  //                             callers may take them), Error::exhausted if none are —
  //                             unless freed pages await zeroing, which it waits for.
  // cache may be null for non-atomic calls only.
  std::expected<Page, Error> alloc_page(uint32_t flags, OwnerId owner, PageCache* cache);

  // Ends owner's ownership. Atomic-path safe (no syscall/lock/fault). cache may be null
  // (the page then goes straight to the shared lists).
  std::expected<void, Error> free_page(const Page& page, OwnerId owner, PageCache* cache);

  // Batched forms, for a context that takes or gives back many pages at once (a NIC
  // refilling its RX ring, a burst of completions): the same contract per page, with the
  // flag, owner and cache checks, the ring publication and the counters paid once.
  // alloc_pages: atomic only (flags == kGfpAtomicExclusive; a batch never waits). Fills
  // out[0..k) and returns k: k < n means the pool ran dry after k pages; not even one is
  // Error::exhausted. Atomic-path safe.
  std::expected<uint32_t, Error> alloc_pages(uint32_t flags, OwnerId owner, PageCache* cache,
                                             Page* out, uint32_t n);
  // free_pages: frees every page of pages[0..n) that passes free_page's checks; each one
  // that does not is refused and counted exactly as free_page would, and the rest are
  // still freed. Returns how many were freed; *first_error (if given) is the first
  // refusal's reason (Error{} if none). Atomic-path safe.
  uint32_t free_pages(const Page* pages, uint32_t n, OwnerId owner, PageCache* cache,
                      Error* first_error = nullptr);

  // Moves ownership from -> to. Atomic-path safe. Returns the (same-generation) handle.
  std::expected<Page, Error> transfer(const Page& page, OwnerId from, OwnerId to);

  // Moves the page at gpa from `from` to `to` in ONE compare-and-swap that checks the page
  // is allocated and owned by `from` right now. The way to take back a page that an
  // untrusted party (a guest's return ring) names only by address: a page it does not
  // own now — free (Error::double_free), owned by anyone else including `to` itself after
  // an earlier return of it (Error::not_owner), outside a live chunk (out_of_window) — is
  // refused and counted, never half-applied. Atomic-path safe. Returns the handle.
  // A guest that returns a page it still owns but in a LATER life than the one it means
  // (a stale duplicate return after the page was delivered to it again) cannot be told
  // apart by address alone: pass that life's generation (the ABI must carry it back) as
  // `generation` to have it refused as Error::stale_handle too.
  static constexpr uint64_t kAnyGeneration = ~uint64_t{0};
  std::expected<Page, Error> transfer_gpa(uint64_t gpa, OwnerId from, OwnerId to,
                                          uint64_t generation = kAnyGeneration);

  // Current handle of the ALLOCATED page at gpa (page aligned, inside a live chunk; a
  // free page is Error::double_free). Read-only: the page may change hands right after,
  // so act on it only through calls that re-check (transfer/free CAS on the generation).
  // The handle's host pointer was valid when returned: a chunk is retired only when all of
  // its pages are free, and the page was seen allocated before and after reading it.
  std::expected<Page, Error> lookup_gpa(uint64_t gpa) const;
  // Owner of an allocated page (kNoOwner if free), for diagnostics and tests.
  std::expected<OwnerId, Error> owner_of(const Page& page) const;

  PoolStats stats() const;
  const PoolConfig& config() const { return cfg_; }
  uint32_t id() const { return pool_id_; }

  // The background worker, for callers that create the pool with start_worker = false.
  // run_worker() runs the worker's loop on the calling thread until stop_worker(): the
  // same loop the pool's own thread runs with start_worker = true (passes back to back
  // while they make progress, else one every worker_poll, at once when a non-atomic
  // allocation starts to wait). The VMM runs it on a thread it owns, so that the thread
  // confines itself (seccomp) before any of the pool's code runs on it.
  void run_worker();
  // Makes run_worker() return (now if it sleeps, else after its current pass) and every
  // later call return at once; non-atomic allocations stop waiting (Error::timed_out).
  // The caller then joins its thread; the pool must outlive it. Thread-safe.
  void stop_worker();
  // One pass of the worker's job (zero dirty pages, grow, shrink), serialized with any
  // other pass: tests and benchmarks step the worker with it.
  void run_worker_once();

  // Quiescent self-check: every page is in exactly one place (a cache, a depot stack,
  // the dirty list, or allocated) and its descriptor agrees. Call only while no other
  // thread uses the pool. Returns a description of the first inconsistency, or "".
  std::string audit() const;

  struct Impl;  // page_pool_impl.h

 private:
  explicit PagePool(const PoolConfig& cfg, MemslotSink& sink);
  // alloc_page beyond its fast path (refills, refusals, non-atomic callers).
  [[gnu::noinline]] std::expected<Page, Error> alloc_page_slow(uint32_t flags, OwnerId owner,
                                                               PageCache* cache);
  // free_page beyond its fast path (no cache, refusals).
  [[gnu::noinline]] std::expected<void, Error> free_page_slow(const Page& page, OwnerId owner,
                                                              PageCache* cache);
  PoolConfig cfg_;
  uint32_t pool_id_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace labyrinth::alloc
