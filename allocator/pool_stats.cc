// allocator/pool_stats.cc — looking at a pool from outside: the counters' snapshot
// (stats) and the quiescent self-check (audit).
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "allocator/page_pool.h"
#include "allocator/page_pool_impl.h"

namespace labyrinth::alloc {

// Lock-free and safe from any thread: relaxed loads, so each field is exact but the
// fields are not taken at one instant. The atomic path's counters live
// in each cache (no shared line written per allocation) and are summed here.
PoolStats PagePool::stats() const {
  const Impl& m = *impl_;
  const SharedHot& s = *m.shared;
  // The gauges (not counters) are plain atomics.
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  PoolStats st;
  uint64_t cached = 0;
  uint64_t dirty_rings = 0;
  uint64_t frees = s.frees_uncached.get();
  for (uint32_t i = 0; i < cfg_.max_caches; ++i) {
    const PageCache& c = m.caches[i];
    st.alloc_cache += c.alloc_cache.get();
    st.alloc_depot += c.alloc_depot.get();
    st.alloc_reserve += c.alloc_reserve.get();
    st.fail_exhausted += c.fail_exhausted.get();
    frees += c.frees.get();
    st.cache_refills += c.refills.get();
    st.cache_flushes += c.flushes.get();
    cached +=
        c.count.load(std::memory_order_relaxed) + c.prev_count.load(std::memory_order_relaxed);
    dirty_rings += c.dirty_pending();
  }
  st.alloc_wait = s.alloc_wait.get();
  st.alloc_waited = s.alloc_waited.get();
  st.alloc_wait_began = s.alloc_wait_began.get();
  st.fail_exhausted += s.fail_exhausted_wait.get();
  st.fail_reserve_only = s.fail_reserve_only.get();
  st.fail_timed_out = s.fail_timed_out.get();
  st.frees = frees;
  st.transfers = s.transfers.get();
  st.violation_double_free = s.violation_double_free.get();
  st.violation_not_owner = s.violation_not_owner.get();
  st.violation_stale = s.violation_stale.get();
  st.violation_out_of_window = s.violation_out_of_window.get();
  st.violation_foreign_pool = s.violation_foreign_pool.get();
  st.violation_bad_handle = s.violation_bad_handle.get();
  st.violation_bad_cache = s.violation_bad_cache.get();
  st.pages_zeroed = s.pages_zeroed.get();
  st.chunks_added = s.chunks_added.get();
  st.chunks_removed = s.chunks_removed.get();
  st.grow_failures = s.grow_failures.get();
  st.unmap_failures = s.unmap_failures.get();
  st.grow_on_failure = s.grow_on_failure.get();
  st.below_low_events = s.below_low_events.get();
  st.below_min_events = s.below_min_events.get();
  st.chunks = ld(s.chunks);
  st.chunks_high_water = ld(s.chunks_high_water);
  st.total_pages = st.chunks * m.ppc;
  st.free_clean = m.depot_clean(ld(s.depot));
  st.free_dirty = ld(s.dirty_count) + dirty_rings;
  // in_use is derived, not counted: the atomic path would otherwise write a shared
  // counter on every allocation and free. Clamped because the terms are read apart.
  const uint64_t not_in_use = st.free_clean + st.free_dirty + cached;
  st.in_use = st.total_pages > not_in_use ? st.total_pages - not_in_use : 0;
  return st;
}

// Walks every place a page can be and marks it, so that a page found twice, in the wrong
// state, or nowhere is reported by index. Takes worker_mu only to keep the worker's own
// pass out; other threads must be quiet (page_pool.h).
std::string PagePool::audit() const {
  const Impl& m = *impl_;
  std::lock_guard lock(m.worker_mu);
  std::vector<uint8_t> seen(m.max_pages, 0);
  auto where = [](uint32_t i) { return " (page " + std::to_string(i) + ")"; };
  auto mark = [&](uint32_t i, uint64_t want_state, const char* place) -> std::string {
    if (i >= m.max_pages) return std::string("index out of range in ") + place + where(i);
    if (seen[i]) return std::string("page listed twice, again in ") + place + where(i);
    seen[i] = 1;
    const uint64_t st = desc_state(m.pm[i].word.load(std::memory_order_relaxed));
    if (st != want_state) {
      return std::string("descriptor state ") + std::to_string(st) + " in " + place + where(i);
    }
    return "";
  };
  uint64_t in_stacks = 0;
  for (uint32_t c = 0; c < cfg_.max_chunks; ++c) {
    const bool active = m.chunks[c].state.load(std::memory_order_relaxed) == kChunkActive;
    const uint64_t h = m.chunks[c].head.load(std::memory_order_relaxed);
    if (!active) continue;
    if (h & kFrozen) return "active chunk " + std::to_string(c) + " is frozen";
    uint32_t n = 0;
    for (uint32_t i = head_top(h); i != kNil; i = m.pm[i].next.load(std::memory_order_relaxed)) {
      if (m.chunk_of(i) != c) return "page on the wrong chunk's stack" + where(i);
      if (auto e = mark(i, kFree, "a depot stack"); !e.empty()) return e;
      if (++n > m.ppc) return "cycle in chunk stack " + std::to_string(c);
    }
    in_stacks += n;
  }
  const uint64_t depot = m.shared->depot.load(std::memory_order_relaxed);
  if (in_stacks != Impl::depot_loose(depot)) {
    return "loose count " + std::to_string(Impl::depot_loose(depot)) + " != pages on stacks " +
           std::to_string(in_stacks);
  }
  // Magazines: each in exactly one place; full ones hold exactly M clean pages.
  std::vector<uint8_t> mag_seen(m.mags, 0);
  auto walk_mags = [&](uint64_t head, bool full, uint64_t* count) -> std::string {
    for (uint32_t g = head_top(head); g != kNil;
         g = m.mag_next[g].load(std::memory_order_relaxed)) {
      if (g >= m.mags) return "magazine index out of range";
      if (mag_seen[g]) return "magazine " + std::to_string(g) + " in two places";
      mag_seen[g] = 1;
      ++*count;
      if (!full) continue;
      for (uint32_t j = 0; j < m.mag_pages; ++j) {
        if (auto e = mark(m.slots_of(g)[j], kFree, "a full magazine"); !e.empty()) return e;
      }
    }
    return "";
  };
  uint64_t full = 0, empty = 0;
  if (auto e = walk_mags(m.shared->full_head.load(std::memory_order_relaxed), true, &full);
      !e.empty()) {
    return e;
  }
  if (full != Impl::depot_mags(depot)) {
    return "full magazine count " + std::to_string(Impl::depot_mags(depot)) +
           " != magazines on the full stack " + std::to_string(full);
  }
  if (auto e = walk_mags(m.shared->empty_head.load(std::memory_order_relaxed), false, &empty);
      !e.empty()) {
    return e;
  }
  uint64_t held = 0;
  for (uint32_t k = 0; k < cfg_.max_caches; ++k) {
    const PageCache& c = m.caches[k];
    if (c.pool.load(std::memory_order_relaxed) == nullptr) continue;
    const uint32_t pc = c.prev_count.load(std::memory_order_relaxed);
    if (c.count.load(std::memory_order_relaxed) > m.mag_pages || (pc != 0 && pc != m.mag_pages)) {
      return "cache " + std::to_string(k) + " magazine counts out of range";
    }
    for (const uint32_t g : {c.loaded, c.prev}) {
      if (g >= m.mags || mag_seen[g]) return "cache magazine in two places or out of range";
      mag_seen[g] = 1;
      ++held;
    }
  }
  if (full + empty + held != m.mags) return "magazines lost";
  uint64_t dirty = 0;
  for (uint32_t i = head_top(m.shared->dirty_head.load(std::memory_order_relaxed)); i != kNil;
       i = m.pm[i].next.load(std::memory_order_relaxed)) {
    if (auto e = mark(i, kDirty, "the dirty list"); !e.empty()) return e;
    if (++dirty > m.max_pages) return "cycle in the dirty list";
  }
  if (dirty != m.shared->dirty_count.load(std::memory_order_relaxed)) {
    return "dirty count mismatch";
  }
  for (uint32_t k = 0; k < cfg_.max_caches; ++k) {
    const PageCache& c = m.caches[k];
    if (c.pool.load(std::memory_order_relaxed) != nullptr) {
      for (uint32_t j = 0; j < c.count.load(std::memory_order_relaxed); ++j) {
        if (auto e = mark(c.slots[j], kFree, "a cache magazine"); !e.empty()) return e;
      }
      for (uint32_t j = 0; j < c.prev_count.load(std::memory_order_relaxed); ++j) {
        if (auto e = mark(m.slots_of(c.prev)[j], kFree, "a cache magazine"); !e.empty()) return e;
      }
    }
    const uint32_t head = c.dirty_head.load(std::memory_order_relaxed);
    for (uint32_t j = head; j != c.dirty_tail.load(std::memory_order_relaxed); ++j) {
      if (auto e = mark(c.dirty[j & c.ring_mask], kDirty, "a cache dirty ring"); !e.empty()) {
        return e;
      }
    }
  }
  for (uint32_t i = 0; i < m.max_pages; ++i) {
    const uint64_t st = desc_state(m.pm[i].word.load(std::memory_order_relaxed));
    const bool active =
        m.chunks[m.chunk_of(i)].state.load(std::memory_order_relaxed) == kChunkActive;
    if (!active) {
      if (st != kOffline) return "page of an unmapped chunk is not offline" + where(i);
      continue;
    }
    if (st == kAllocated) {
      if (seen[i]) return "allocated page is also on a free list" + where(i);
      seen[i] = 1;
    }
    if (!seen[i]) return "page is nowhere (leaked)" + where(i);
  }
  return "";
}

}  // namespace labyrinth::alloc
