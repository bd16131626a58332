// allocator/page_pool_impl.h — PagePool::Impl: the pool's state and the lock-free
// operations on it (stacks, magazines, claims, handle checks, the free path's steps).
//
// Internal to the pool: page_pool.cc (create, caches, the public alloc/free/transfer
// paths), pool_worker.cc (the background worker) and pool_stats.cc (stats, audit)
// include it, nothing else does. The operations are defined in the class, so the public
// paths' translation unit inlines them: the atomic alloc and free are each one function
// body, with only their cold steps out of line (reload, unload, count_violation,
// spill_freed, recycle_freed). The records they work on and the concurrency design:
// pool_layout.h.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <mutex>
#include <new>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "allocator/page_pool.h"
#include "allocator/pinned_region.h"
#include "allocator/pool_layout.h"

namespace labyrinth::alloc {

// Objects the atomic path dereferences (PagePool, its Impl) are allocated from their own
// pinned mapping: pre-faulted, mlock'ed, never swapped, so reading them cannot fault.
inline void* pinned_new(std::size_t bytes) {
  void* p = pinned_alloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
inline void pinned_delete(void* p, std::size_t bytes) noexcept {
  pinned_free(p, bytes);
}

struct PagePool::Impl {
  PoolConfig cfg;
  MemslotSink& sink;
  uint32_t pool_id;
  uint32_t ppc;        // pages per chunk
  uint32_t ppc_shift;  // log2(ppc)
  uint32_t max_pages;
  uint32_t mag_pages;  // M: pages per magazine (cache_capacity / 2)
  uint32_t mags;       // magazines in all

  VaReservation va;                // max_chunks * chunk_bytes of address space for the chunks
  std::byte* host_base = nullptr;  // va.data()
  PinnedRegion meta;               // everything below points into it
  SharedHot* shared = nullptr;
  ChunkHot* chunks = nullptr;
  PageMeta* pm = nullptr;  // max_pages records
  PageCache* caches = nullptr;
  std::atomic<uint32_t>* mag_next = nullptr;  // magazine stack links
  uint32_t* mag_slots = nullptr;              // mags * mag_pages page indices

  // Cold, worker-owned chunk state (worker_mu_).
  struct ChunkCold {
    PinnedRegion region;
    uint32_t memslot = 0;
  };
  mutable std::mutex
      worker_mu;  // lock order: worker_mu before wait_mu; never taken on the atomic path
  std::vector<ChunkCold> cold;
  bool below_low = false, below_min = false;
  // Since when the depot has been above high + one chunk (shrink hysteresis).
  std::optional<std::chrono::steady_clock::time_point> surplus_since;
  uint64_t atomic_failures_seen = 0;  // sum of the caches' fail_exhausted at the last pass
  Error last_grow_error = Error::at_maximum;

  std::mutex attach_mu;  // guards PageCache::pool

  std::mutex wait_mu;                 // guards nothing but the condition variables' sleep
  std::condition_variable worker_cv;  // wakes the worker (non-atomic allocs, shutdown)
  std::condition_variable pages_cv;   // wakes non-atomic allocs waiting for pages
  bool stop = false;                  // guarded by wait_mu
  bool grow_requested = false;        // guarded by wait_mu
  std::thread worker;

  Impl(const PoolConfig& c, MemslotSink& s) : cfg(c), sink(s) {}
  // Pinned like the pool object (see PagePool::operator new).
  static void* operator new(std::size_t bytes) { return pinned_new(bytes); }
  static void operator delete(void* p, std::size_t bytes) noexcept { pinned_delete(p, bytes); }

  uint64_t chunk_gpa(uint32_t c) const { return cfg.window_gpa + uint64_t{c} * cfg.chunk_bytes; }
  uint32_t chunk_of(uint32_t idx) const { return idx >> ppc_shift; }
  // Chunk c is mapped at host_base + c * chunk_bytes (fixed offsets in one reservation).
  std::byte* host_of(uint32_t idx) const { return host_base + uint64_t{idx} * kPageSize; }

  // ---- stacks ----
  // Pushes the chain first..last (links already written) of n pages. Fails on a frozen head.
  bool push_chain(std::atomic<uint64_t>& head, uint32_t first, uint32_t last) {
    uint64_t h = head.load(std::memory_order_relaxed);
    for (;;) {
      if (h & kFrozen) return false;
      pm[last].next.store(head_top(h), std::memory_order_relaxed);
      // release: publishes the chain's links (and the pages' descriptor/contents) to the
      // popper's acquire load of head.
      if (head.compare_exchange_weak(h, make_head(first, head_tag(h) + 1, false),
                                     std::memory_order_release, std::memory_order_relaxed)) {
        return true;
      }
    }
  }

  // Pops up to max pages into out; returns how many (0 if empty or frozen).
  uint32_t pop_batch(std::atomic<uint64_t>& head, uint32_t* out, uint32_t max) {
    uint64_t h = head.load(std::memory_order_acquire);
    for (;;) {
      if ((h & kFrozen) || head_top(h) == kNil) return 0;
      uint32_t n = 0;
      uint32_t i = head_top(h);
      while (n < max && i != kNil) {
        out[n++] = i;
        if (i >= max_pages) break;  // torn walk; the CAS below fails
        i = pm[i].next.load(std::memory_order_relaxed);
      }
      // acquire on success: pairs with the pusher's release, the pages are ours.
      if (head.compare_exchange_weak(h, make_head(i, head_tag(h) + 1, false),
                                     std::memory_order_acquire, std::memory_order_acquire)) {
        return n;
      }
    }
  }

  // Links idx[0..n) into a chain; returns nothing, caller pushes idx[0]..idx[n-1].
  void link(const uint32_t* idx, uint32_t n) {
    for (uint32_t k = 0; k + 1 < n; ++k)
      pm[idx[k]].next.store(idx[k + 1], std::memory_order_relaxed);
  }

  // ---- magazines ----
  uint32_t* slots_of(uint32_t mag) const { return mag_slots + size_t{mag} * mag_pages; }

  void push_mag(std::atomic<uint64_t>& head, uint32_t mag) {
    uint64_t h = head.load(std::memory_order_relaxed);
    for (;;) {
      mag_next[mag].store(head_top(h), std::memory_order_relaxed);
      // release: the magazine's slots (and its pages' words and zeroes) before the head.
      if (head.compare_exchange_weak(h, make_head(mag, head_tag(h) + 1, false),
                                     std::memory_order_release, std::memory_order_relaxed)) {
        return;
      }
    }
  }
  // kNil if the stack is empty. A claimed full magazine is always there: retry until got.
  uint32_t pop_mag(std::atomic<uint64_t>& head) {
    uint64_t h = head.load(std::memory_order_acquire);
    for (;;) {
      const uint32_t top = head_top(h);
      if (top == kNil) return kNil;
      const uint32_t next = top < mags ? mag_next[top].load(std::memory_order_relaxed) : kNil;
      if (head.compare_exchange_weak(h, make_head(next, head_tag(h) + 1, false),
                                     std::memory_order_acquire, std::memory_order_acquire)) {
        return top;
      }
    }
  }
  // Publishes a full magazine to the depot: on the stack first, counted second.
  void give_full(uint32_t mag) {
    push_mag(shared->full_head, mag);
    shared->depot.fetch_add(kOneMag, std::memory_order_release);
  }
  // Moves pages idx[0..n) (clean, kFree, the caller's alone) into the depot: whole
  // magazines while empty ones are at hand, the rest loose. Reorders idx.
  void give_clean(uint32_t* idx, uint32_t n) {
    while (n >= mag_pages) {
      const uint32_t mag = pop_mag(shared->empty_head);
      if (mag == kNil) break;
      std::memcpy(slots_of(mag), idx, sizeof(uint32_t) * mag_pages);
      give_full(mag);
      idx += mag_pages;
      n -= mag_pages;
    }
    push_clean(idx, n);
  }

  // The cache's loaded magazine is empty (alloc path): swap in a full previous one, or
  // exchange magazines with the depot, or take loose pages. Returns the pages now loaded;
  // 0 if the depot is empty (Error::exhausted).
  // Out of line and cold: the fast path around it then needs no saved registers.
  [[gnu::noinline, gnu::cold]] uint32_t reload(PageCache& c) {
    if (c.prev_count.load(std::memory_order_relaxed) == mag_pages) {
      std::swap(c.loaded, c.prev);
      c.slots = slots_of(c.loaded);
      c.prev_count.store(0, std::memory_order_relaxed);
      c.alloc_cache.inc();
      return mag_pages;
    }
    const Claim cl = claim_refill();
    uint32_t n = 0;
    if (cl.mag) {  // both magazines empty: one goes back, a full one comes in
      const uint32_t full = pop_claimed_mag();
      push_mag(shared->empty_head, c.prev);
      c.prev = c.loaded;
      c.loaded = full;
      c.slots = slots_of(full);
      n = mag_pages;
    } else if (cl.loose > 0) {
      pop_claimed(c.slots, cl.loose, &c.hint);
      n = cl.loose;
    } else {
      return 0;
    }
    c.refills.inc();
    (cl.reserve ? c.alloc_reserve : c.alloc_depot).inc();
    return n;
  }
  // The cache's loaded magazine is full (free path): if the previous one is full too it
  // goes to the depot and an empty one takes its place; then loaded and previous swap.
  // Returns the pages now loaded (0).
  // Out of line and cold: the fast path around it then needs no saved registers.
  [[gnu::noinline, gnu::cold]] uint32_t unload(PageCache& c) {
    if (c.prev_count.load(std::memory_order_relaxed) == mag_pages) {
      const uint32_t empty = pop_mag(shared->empty_head);
      if (empty ==
          kNil) {  // not expected (see Magazines, pool_layout.h): the pages go loose instead
        push_clean(slots_of(c.prev), mag_pages);
      } else {
        give_full(c.prev);
        c.prev = empty;
      }
      c.flushes.inc();
    }
    std::swap(c.loaded, c.prev);
    c.slots = slots_of(c.loaded);
    c.prev_count.store(mag_pages, std::memory_order_relaxed);
    return 0;
  }

  // ---- claims ----
  static constexpr uint64_t kOneMag = 1ull << 32;
  static uint64_t depot_mags(uint64_t d) { return d >> 32; }
  static uint64_t depot_loose(uint64_t d) { return d & 0xFFFFFFFFu; }
  uint64_t depot_clean(uint64_t d) const { return depot_mags(d) * mag_pages + depot_loose(d); }

  struct Claim {
    uint32_t loose = 0;    // loose pages claimed
    bool mag = false;      // one full magazine claimed
    bool reserve = false;  // the claim took the clean count below min_pages
  };
  // A cache refill on the atomic path: one full magazine if the depot has one, else up to
  // mag_pages loose pages; may empty the depot (the atomic reserve).
  Claim claim_refill() {
    uint64_t d = shared->depot.load(std::memory_order_relaxed);
    for (;;) {
      Claim c;
      uint64_t nd = 0;
      if (depot_mags(d) > 0) {
        c.mag = true;
        nd = d - kOneMag;
      } else if (depot_loose(d) > 0) {
        c.loose = static_cast<uint32_t>(std::min<uint64_t>(mag_pages, depot_loose(d)));
        nd = d - c.loose;
      } else {
        return c;
      }
      // acquire: pairs with the release increment after a push; the pages are visible.
      if (shared->depot.compare_exchange_weak(d, nd, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
        c.reserve = depot_clean(nd) < cfg.min_pages;
        return c;
      }
    }
  }
  // One page for a non-atomic caller, who may not take the clean count below min_pages:
  // a loose page if any, else a whole magazine (the caller keeps one page and returns the
  // rest loose). Nothing claimed if the depot holds min_pages or fewer.
  Claim claim_one() {
    uint64_t d = shared->depot.load(std::memory_order_relaxed);
    for (;;) {
      Claim c;
      if (depot_clean(d) <= cfg.min_pages) return c;
      uint64_t nd = 0;
      if (depot_loose(d) > 0) {
        c.loose = 1;
        nd = d - 1;
      } else {
        c.mag = true;
        nd = d - kOneMag;
      }
      if (shared->depot.compare_exchange_weak(d, nd, std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
        return c;
      }
    }
  }
  // Pops a magazine this thread claimed (it is on the full stack: see Claims, pool_layout.h).
  uint32_t pop_claimed_mag() {
    for (;;) {
      const uint32_t mag = pop_mag(shared->full_head);
      if (mag != kNil) return mag;
    }
  }

  // Pops exactly n claimed pages into out, scanning chunk stacks from *hint.
  void pop_claimed(uint32_t* out, uint32_t n, uint32_t* hint) {
    uint32_t got = 0;
    uint32_t c = *hint;
    for (;;) {
      const uint32_t limit = shared->chunk_limit.load(std::memory_order_acquire);
      if (c >= limit) c = 0;
      got += pop_batch(chunks[c].head, out + got, n - got);
      if (got == n) {
        *hint = c;
        return;
      }
      ++c;
    }
  }

  // Returns clean pages (descriptors kFree) to their chunks' stacks; pages whose chunk
  // is frozen go to the dirty list. Reorders idx.
  void push_clean(uint32_t* idx, uint32_t n) {
    while (n > 0) {
      const uint32_t c = chunk_of(idx[0]);
      uint32_t k = 1;  // partition: same-chunk pages to the front
      for (uint32_t j = 1; j < n; ++j) {
        if (chunk_of(idx[j]) == c) std::swap(idx[k++], idx[j]);
      }
      link(idx, k);
      if (push_chain(chunks[c].head, idx[0], idx[k - 1])) {
        shared->depot.fetch_add(k, std::memory_order_release);
      } else {
        for (uint32_t j = 0; j < k; ++j) {
          const uint64_t w = pm[idx[j]].word.load(std::memory_order_relaxed);
          pm[idx[j]].word.store(desc_word(kDirty, desc_gen(w), kNoOwner),
                                std::memory_order_relaxed);
        }
        push_dirty(idx, k);
      }
      idx += k;
      n -= k;
    }
  }

  void push_dirty(const uint32_t* idx, uint32_t n) {
    if (n == 0) return;
    link(idx, n);
    // Count first, push second: drain_dirty subtracts only what it took off the list, so
    // the count never goes below the pages on it (it used to wrap to 2^64 - 1).
    shared->dirty_count.fetch_add(n, std::memory_order_relaxed);
    const bool ok = push_chain(shared->dirty_head, idx[0], idx[n - 1]);
    (void)ok;  // the dirty list is never frozen
  }

  // Takes up to max entries off a cache's dirty ring (consumer side; worker_mu held).
  uint32_t take_ring(PageCache& c, uint32_t* out, uint32_t max) {
    const uint32_t h = c.dirty_head.load(std::memory_order_relaxed);
    // acquire: pairs with the producer's release store of dirty_tail (entries visible).
    const uint32_t t = c.dirty_tail.load(std::memory_order_acquire);
    const uint32_t n = std::min(t - h, max);
    for (uint32_t k = 0; k < n; ++k) out[k] = c.dirty[(h + k) & c.ring_mask];
    // release: the entries were read before the producer may overwrite them.
    c.dirty_head.store(h + n, std::memory_order_release);
    return n;
  }

  // Page index of a guest-physical address inside the window, or out_of_window.
  std::expected<uint32_t, Error> index_of(uint64_t gpa) const {
    if (gpa < cfg.window_gpa || gpa % kPageSize != 0 ||
        (gpa - cfg.window_gpa) / kPageSize >= max_pages) {
      return std::unexpected(Error::out_of_window);
    }
    return static_cast<uint32_t>((gpa - cfg.window_gpa) / kPageSize);
  }

  // Freed pages not yet zeroed: the shared list and every cache's ring.
  uint64_t dirty_pending() const {
    uint64_t n = shared->dirty_count.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < cfg.max_caches; ++i) n += caches[i].dirty_pending();
    return n;
  }

  // ---- validation of handles ----
  // Checks of a handle that need no descriptor.
  std::expected<void, Error> check_handle(const Page& p) const {
    if (p.pool_id != pool_id) return std::unexpected(Error::foreign_pool);
    if (p.index >= max_pages) return std::unexpected(Error::out_of_window);
    if (p.generation >= kGenLimit) return std::unexpected(Error::stale_handle);
    if (p.gpa != cfg.window_gpa + uint64_t{p.index} * kPageSize) {
      return std::unexpected(Error::bad_handle);
    }
    return {};
  }

  // check_handle as one expression for the fast path, on a valid cache's copies of the
  // pool's constants: true iff it would pass and the handle's host pointer is the page's.
  static bool handle_matches(const PageCache& c, const Page& p) {
    const uint64_t off = uint64_t{p.index} * kPageSize;
    return p.pool_id == c.pool_id && p.index < c.max_pages && p.generation < kGenLimit &&
           p.gpa == c.window_gpa + off && p.host == c.host_base + off;
  }

  // Checks handle p (already through check_handle) against its page's word w, loaded
  // with acquire, for an ownership change by `owner`: ok iff w is {allocated, p's
  // generation, owner} and p.host is the page's.
  std::expected<void, Error> check_word(const Page& p, uint64_t w, OwnerId owner) const {
    const uint64_t st = desc_state(w);
    if (st == kOffline) return std::unexpected(Error::out_of_window);
    // era after w (acquire above): it is at least as new as w's low bits.
    if (desc_gen(w) != gen_low(p.generation) ||
        pm[p.index].era.load(std::memory_order_relaxed) != gen_era(p.generation)) {
      return std::unexpected(Error::stale_handle);
    }
    if (p.host != host_of(p.index)) return std::unexpected(Error::bad_handle);
    if (st != kAllocated) return std::unexpected(Error::double_free);
    if (owner == kNoOwner || desc_owner(w) != owner) return std::unexpected(Error::not_owner);
    return {};
  }

  // Out of line and cold: the fast path around it then needs no saved registers.
  [[gnu::noinline, gnu::cold]] void count_violation(Error e) const {
    switch (e) {
      case Error::double_free:
        shared->violation_double_free.inc_shared();
        break;
      case Error::not_owner:
        shared->violation_not_owner.inc_shared();
        break;
      case Error::stale_handle:
        shared->violation_stale.inc_shared();
        break;
      case Error::out_of_window:
        shared->violation_out_of_window.inc_shared();
        break;
      case Error::foreign_pool:
        shared->violation_foreign_pool.inc_shared();
        break;
      case Error::bad_handle:
        shared->violation_bad_handle.inc_shared();
        break;
      case Error::bad_cache:
        shared->violation_bad_cache.inc_shared();
        break;
      default:
        break;
    }
  }

  // A cache the atomic path may use: this pool's, attached.
  bool cache_ok(const PageCache* c) const {
    return c != nullptr && c->pool.load(std::memory_order_relaxed) == this;
  }

  Page make_page(uint32_t idx, uint64_t gen) const {
    return Page{cfg.window_gpa + uint64_t{idx} * kPageSize, host_of(idx), gen, idx, pool_id};
  }

  // The next generation of page idx (held exclusively: free and off every list, or its
  // chunk being retired); bumps the era when the low bits wrap. Returns the full value.
  uint64_t advance_gen(uint32_t idx, uint64_t w) {
    const uint32_t low = (desc_gen(w) + 1) & kGenMask;
    uint32_t era = pm[idx].era.load(std::memory_order_relaxed);
    if (low == 0) [[unlikely]] {
      ++era;
      // published by the release store of the word that follows.
      pm[idx].era.store(era, std::memory_order_relaxed);
    }
    return full_gen(era, low);
  }

  // Publishes a freshly popped (clean, kFree) page as owned by owner.
  Page hand_out(uint32_t idx, OwnerId owner) {
    const uint64_t w = pm[idx].word.load(std::memory_order_relaxed);
    const uint64_t gen = advance_gen(idx, w);
    // release: pairs with the acquire of a later free/transfer CAS by this owner.
    pm[idx].word.store(desc_word(kAllocated, gen_low(gen), owner), std::memory_order_release);
    return make_page(idx, gen);
  }

  // hand_out on a valid cache's copies of the pool's constants (the fast path).
  static Page hand_out(const PageCache& c, uint32_t idx, OwnerId owner) {
    PageMeta& d = c.pm[idx];
    const uint32_t low = (desc_gen(d.word.load(std::memory_order_relaxed)) + 1) & kGenMask;
    uint32_t era = d.era.load(std::memory_order_relaxed);
    if (low == 0) [[unlikely]]
      d.era.store(++era, std::memory_order_relaxed);  // published by the release below
    // release: pairs with the acquire of a later free/transfer CAS by this owner.
    d.word.store(desc_word(kAllocated, low, owner), std::memory_order_release);
    const uint64_t off = uint64_t{idx} * kPageSize;
    return Page{c.window_gpa + off, c.host_base + off, full_gen(era, low), idx, c.pool_id};
  }

  // ---- freeing ----
  // Ends owner's ownership of the page (handle already through check_handle) in one CAS
  // after every check of its word; the page is then kDirty and the caller's alone.
  // Refusals are counted.
  std::expected<void, Error> take_back(const Page& page, OwnerId owner) {
    std::atomic<uint64_t>& word = pm[page.index].word;
    // acquire: pairs with the allocation's release (the handle's era is then current for
    // this word). The CAS's acq_rel: acquire again for the page contents we zero or
    // reuse, release publishes the state change to the next allocator.
    uint64_t w = word.load(std::memory_order_acquire);
    for (;;) {
      if (auto ok = check_word(page, w, owner); !ok) {
        count_violation(ok.error());
        return ok;
      }
      if (word.compare_exchange_weak(w, desc_word(kDirty, gen_low(page.generation), kNoOwner),
                                     std::memory_order_acq_rel, std::memory_order_acquire)) {
        return {};
      }
    }
  }
  // ZeroPolicy::on_free: zeroes page idx (taken back) and keeps it in the cache's loaded
  // magazine, or gives it to the depot without a cache.
  void recycle_now(uint32_t idx, uint32_t low, PageCache* cache) {
    std::memset(host_of(idx), 0, kPageSize);
    pm[idx].word.store(desc_word(kFree, low, kNoOwner), std::memory_order_relaxed);
    if (cache == nullptr) {
      push_clean(&idx, 1);
      shared->frees_uncached.inc_shared();
      return;
    }
    uint32_t n = cache->count.load(std::memory_order_relaxed);
    if (n == mag_pages) [[unlikely]]
      n = unload(*cache);
    cache->slots[n] = idx;
    cache->count.store(n + 1, std::memory_order_relaxed);
    cache->frees.inc();
  }
  // recycle_now out of line: the zeroing dwarfs a call, and the fast path around it then
  // keeps its registers.
  [[gnu::noinline]] void recycle_freed(uint32_t idx, uint32_t low, PageCache* cache) {
    recycle_now(idx, low, cache);
  }
  // Free entries in the cache's dirty ring at producer position t (>= want if the worker
  // made room: dirty_head is read only when the last view says there is too little).
  uint32_t ring_room(PageCache& c, uint32_t t, uint32_t want) {
    uint32_t room = c.ring_mask + 1 - (t - c.dirty_head_seen);
    if (room < want) {
      // acquire: pairs with the worker's release of dirty_head (it read those entries).
      c.dirty_head_seen = c.dirty_head.load(std::memory_order_acquire);
      room = c.ring_mask + 1 - (t - c.dirty_head_seen);
    }
    return room;
  }
  // Writes idx at ring position *t (advancing it) if room is left, else spills it to the
  // shared dirty list (the worker is behind). Returns the room left. The caller
  // publishes the tail.
  uint32_t queue_dirty(PageCache& c, uint32_t idx, uint32_t* t, uint32_t room) {
    if (room == 0) {
      push_dirty(&idx, 1);
      c.flushes.inc();
      return 0;
    }
    c.dirty[*t & c.ring_mask] = idx;
    ++*t;
    return room - 1;
  }

  // ZeroPolicy::worker: where the next freed page goes in the cache's dirty ring. Only
  // the cache's thread writes these fields, so the fast path reads them before its CAS
  // and after it only stores (a locked instruction waits for every older load).
  struct RingSlot {
    uint32_t* entry;
    uint32_t tail;
    bool full;  // the ring looks full (spill_freed decides)
  };
  static RingSlot ring_slot(const PageCache& c) {
    const uint32_t t = c.dirty_tail.load(std::memory_order_relaxed);
    return {&c.dirty[t & c.ring_mask], t, t - c.dirty_head_seen > c.ring_mask};
  }
  // Queues taken-back page idx at s (ring_slot's answer) and publishes it, or spills it
  // to the shared list when the ring is full.
  void queue_freed(PageCache& c, uint32_t idx, RingSlot s) {
    if (s.full) [[unlikely]] {
      spill_freed(c, idx, s.tail);
      return;
    }
    *s.entry = idx;
    // release: the entry is written before the worker can see the new tail.
    c.dirty_tail.store(s.tail + 1, std::memory_order_release);
    c.frees.inc();
  }
  // queue_freed's full-ring case, out of line: look at the worker's progress again.
  [[gnu::noinline, gnu::cold]] void spill_freed(PageCache& c, uint32_t idx, uint32_t t) {
    uint32_t next = t;
    queue_dirty(c, idx, &next, ring_room(c, t, 1));
    c.dirty_tail.store(next, std::memory_order_release);
    c.frees.inc();
  }

  // ---- worker jobs (worker_mu held) ----
  void zero_and_recycle(uint32_t* idx, uint32_t n);
  bool mag_to_loose(uint64_t keep);
  bool loose_to_mag(uint64_t keep);
  uint64_t drain_dirty();
  bool add_chunk();
  bool try_retire(uint32_t c);
  bool worker_pass();  // true if it zeroed or grew (more work may be waiting)
  void worker_loop();  // passes until request_stop()
  void request_stop();
};

}  // namespace labyrinth::alloc
