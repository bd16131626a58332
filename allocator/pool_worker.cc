// allocator/pool_worker.cc — the pool's background worker: zeroing freed pages, growing
// the pool below the low watermark, giving back chunks above the high one, and the one
// loop that runs those passes (on the pool's own thread or on a caller's).
//
// Every pass runs under worker_mu, which the atomic path never takes.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <iterator>
#include <mutex>

#include "allocator/page_pool.h"
#include "allocator/page_pool_impl.h"

namespace labyrinth::alloc {

// Maps one more chunk into the first free slot of the window. Its pages become claimable
// only at the last step (the depot count), after their descriptors and stack are
// complete: an allocator that claims them then finds them on the stack.
bool PagePool::Impl::add_chunk() {
  if (shared->chunks.load(std::memory_order_relaxed) >= cfg.max_chunks) {
    last_grow_error = Error::at_maximum;
    return false;
  }
  uint32_t c = 0;
  while (c < cfg.max_chunks && chunks[c].state.load(std::memory_order_relaxed) != kChunkEmpty) ++c;
  if (c == cfg.max_chunks) {
    last_grow_error = Error::at_maximum;
    return false;
  }
  auto region = PinnedRegion::create_at(host_base + uint64_t{c} * cfg.chunk_bytes, cfg.chunk_bytes,
                                        cfg.backing);
  if (!region) {
    last_grow_error = region.error();
    return false;
  }
  auto slot = sink.map(chunk_gpa(c), region->data(), cfg.chunk_bytes);
  if (!slot) {
    last_grow_error = slot.error();
    return false;
  }
  cold[c].region = std::move(*region);
  cold[c].memslot = *slot;
  // Fresh anonymous memory is zero: every page starts clean. Generations continue from
  // the slot's previous life so handles into a removed chunk stay stale.
  const uint32_t first = c * ppc;
  for (uint32_t i = first; i < first + ppc; ++i) {
    const uint64_t w = pm[i].word.load(std::memory_order_relaxed);
    pm[i].word.store(desc_word(kFree, desc_gen(w), kNoOwner), std::memory_order_relaxed);
    pm[i].next.store(i + 1 < first + ppc ? i + 1 : kNil, std::memory_order_relaxed);
  }
  const uint64_t old = chunks[c].head.load(std::memory_order_relaxed);
  chunks[c].head.store(make_head(first, head_tag(old) + 1, false), std::memory_order_release);
  chunks[c].state.store(kChunkActive, std::memory_order_release);
  uint32_t limit = shared->chunk_limit.load(std::memory_order_relaxed);
  if (c + 1 > limit) shared->chunk_limit.store(c + 1, std::memory_order_release);
  const uint64_t now_chunks = shared->chunks.fetch_add(1, std::memory_order_relaxed) + 1;
  if (now_chunks > shared->chunks_high_water.load(std::memory_order_relaxed)) {
    shared->chunks_high_water.store(now_chunks, std::memory_order_relaxed);  // worker_mu held
  }
  shared->chunks_added.inc_shared();
  // release: the chunk's stack is complete before anyone can claim its pages.
  shared->depot.fetch_add(ppc, std::memory_order_release);
  return true;
}

// Gives chunk c back if every one of its pages is loose on its stack (see Chunk
// retirement in pool_layout.h); any page elsewhere — allocated, cached, dirty — keeps
// the chunk, and the claim taken for the check is returned. A chunk KVM will not unmap
// stays pinned forever as a zombie: the guest may still reach its memory.
bool PagePool::Impl::try_retire(uint32_t c) {
  // Claim a chunk's worth so that no other claim depends on this chunk's pages.
  uint64_t d = shared->depot.load(std::memory_order_relaxed);
  do {
    if (depot_loose(d) < ppc || depot_clean(d) < uint64_t{cfg.high_pages} + ppc) return false;
  } while (!shared->depot.compare_exchange_weak(d, d - ppc, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  // Freeze the head: from now on pops fail and pushes divert to the dirty list.
  uint64_t h = chunks[c].head.load(std::memory_order_acquire);
  while (!chunks[c].head.compare_exchange_weak(h, h | kFrozen, std::memory_order_acq_rel,
                                               std::memory_order_acquire)) {
  }
  uint32_t count = 0;
  for (uint32_t i = head_top(h); i != kNil && count <= ppc;
       i = pm[i].next.load(std::memory_order_relaxed)) {
    ++count;
  }
  if (count != ppc) {  // some page is allocated, cached or dirty: keep the chunk
    h = chunks[c].head.load(std::memory_order_acquire);
    while (!chunks[c].head.compare_exchange_weak(h, h & ~kFrozen, std::memory_order_acq_rel,
                                                 std::memory_order_acquire)) {
    }
    shared->depot.fetch_add(ppc, std::memory_order_release);
    return false;
  }
  // Every page is on the frozen stack: nobody else can reach this chunk any more.
  const uint32_t first = c * ppc;
  for (uint32_t i = first; i < first + ppc; ++i) {
    const uint64_t w = pm[i].word.load(std::memory_order_relaxed);
    const uint64_t g = advance_gen(i, w);  // handles into the old chunk stay stale
    pm[i].word.store(desc_word(kOffline, gen_low(g), kNoOwner), std::memory_order_release);
  }
  if (!sink.unmap(cold[c].memslot)) {
    // The guest may still reach the memory: keep it pinned and never reuse the slot.
    chunks[c].state.store(kChunkZombie, std::memory_order_release);
    shared->unmap_failures.inc_shared();
    shared->chunks.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  chunks[c].state.store(kChunkEmpty, std::memory_order_release);
  cold[c].region = PinnedRegion();
  shared->chunks.fetch_sub(1, std::memory_order_relaxed);
  shared->chunks_removed.inc_shared();
  return true;
}

// Zeroes the pages idx[0..n) (state kDirty, held by the caller alone) and returns them
// to the depot clean.
void PagePool::Impl::zero_and_recycle(uint32_t* idx, uint32_t n) {
  for (uint32_t k = 0; k < n; ++k) {
    std::memset(host_of(idx[k]), 0, kPageSize);
    const uint64_t w = pm[idx[k]].word.load(std::memory_order_relaxed);
    pm[idx[k]].word.store(desc_word(kFree, desc_gen(w), kNoOwner), std::memory_order_relaxed);
  }
  give_clean(idx, n);  // release: the zeroes and the words before the pages are claimable
}

// Moves one full magazine's pages to the chunk stacks (shrink) or M loose pages into an
// empty magazine (refills then take whole magazines), while at least `keep` other clean
// pages stay claimable: the M pages in hand are invisible to allocators meanwhile.
bool PagePool::Impl::mag_to_loose(uint64_t keep) {
  uint64_t d = shared->depot.load(std::memory_order_relaxed);
  do {
    if (depot_mags(d) == 0 || depot_clean(d) < keep + mag_pages) return false;
  } while (!shared->depot.compare_exchange_weak(d, d - kOneMag, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  const uint32_t mag = pop_claimed_mag();
  push_clean(slots_of(mag), mag_pages);
  push_mag(shared->empty_head, mag);
  return true;
}

// The reverse of mag_to_loose: M loose pages into an empty magazine, so that cache
// refills move one magazine in one CAS instead of walking a chunk stack.
bool PagePool::Impl::loose_to_mag(uint64_t keep) {
  uint64_t d = shared->depot.load(std::memory_order_relaxed);
  do {
    if (depot_loose(d) < mag_pages || depot_clean(d) < keep + mag_pages) return false;
  } while (!shared->depot.compare_exchange_weak(d, d - mag_pages, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  const uint32_t mag = pop_mag(shared->empty_head);
  uint32_t hint = 0;
  if (mag == kNil) {  // not expected (see Magazines, pool_layout.h): give the claim back
    shared->depot.fetch_add(mag_pages, std::memory_order_release);
    return false;
  }
  pop_claimed(slots_of(mag), mag_pages, &hint);
  give_full(mag);
  return true;
}

// Zeroes every freed page the worker can reach now, in batches, and returns how many:
// the zeroing stays off the atomic path (ZeroPolicy::worker), which only queues.
uint64_t PagePool::Impl::drain_dirty() {
  uint64_t total = 0;
  uint32_t batch[256];
  // Every cache's ring (the cache may be freeing into it right now: SPSC, see
  // pool_layout.h).
  for (uint32_t c = 0; c < cfg.max_caches; ++c) {
    while (uint32_t n = take_ring(caches[c], batch, std::size(batch))) {
      zero_and_recycle(batch, n);
      total += n;
    }
  }
  // The shared list: take it whole in one CAS; the chain is then ours alone.
  uint64_t h = shared->dirty_head.load(std::memory_order_acquire);
  while (head_top(h) != kNil && !shared->dirty_head.compare_exchange_weak(
                                    h, make_head(kNil, head_tag(h) + 1, false),
                                    std::memory_order_acquire, std::memory_order_acquire)) {
  }
  uint32_t i = head_top(h);
  uint32_t n = 0;
  auto flush = [&] {
    // Uncount before the pages leave the dirty state: the count never wraps below zero
    // (push_dirty counts before it pushes) and never counts a page twice.
    shared->dirty_count.fetch_sub(n, std::memory_order_relaxed);
    zero_and_recycle(batch, n);
    total += n;
    n = 0;
  };
  while (i != kNil) {
    batch[n++] = i;
    i = pm[i].next.load(std::memory_order_relaxed);
    if (n == std::size(batch)) flush();
  }
  if (n > 0) flush();
  if (total > 0) shared->pages_zeroed.inc_shared(total);
  return total;
}

// One pass: zero what was freed, then decide growth and shrinking from the depot's clean
// count after the zeroing (freed pages are not a shortage). Growth answers two signals:
// the depot below the low watermark, and atomic failures since the last pass; shrinking
// waits for a surplus that lasted shrink_delay, so a burst does not map and unmap chunks.
bool PagePool::Impl::worker_pass() {
  std::lock_guard lock(worker_mu);
  const uint64_t zeroed = drain_dirty();
  const uint64_t free = depot_clean(shared->depot.load(std::memory_order_relaxed));

  const bool now_below_min = free < cfg.min_pages;
  const bool now_below_low = free < cfg.low_pages;
  if (now_below_min && !below_min) shared->below_min_events.inc_shared();
  if (now_below_low && !below_low) shared->below_low_events.inc_shared();
  below_min = now_below_min;
  below_low = now_below_low;

  // Atomic allocations failed since the last pass: the depot ran dry between passes
  // (bursts faster than the worker's poll, or dirty pages not yet zeroed). The low
  // watermark did not protect the atomic path, so the pool gets another chunk.
  uint64_t failures = 0;
  for (uint32_t i = 0; i < cfg.max_caches; ++i) {
    failures += caches[i].fail_exhausted.get();
  }
  const bool starved = failures != atomic_failures_seen;
  atomic_failures_seen = failures;

  bool grew = false;
  if (starved && !now_below_low && add_chunk()) {
    shared->grow_on_failure.inc_shared();
    grew = true;
  }
  if (now_below_low) {
    while (depot_clean(shared->depot.load(std::memory_order_relaxed)) < cfg.high_pages) {
      if (!add_chunk()) {
        if (last_grow_error != Error::at_maximum) shared->grow_failures.inc_shared();
        break;
      }
      grew = true;
    }
  }
  const bool surplus = free >= uint64_t{cfg.high_pages} + ppc;
  if (!surplus || now_below_low || starved) {
    surplus_since.reset();
  } else if (!surplus_since) {
    surplus_since = std::chrono::steady_clock::now();
  }
  if (cfg.shrink && surplus_since &&
      std::chrono::steady_clock::now() - *surplus_since >= cfg.shrink_delay) {
    // Give back fully free chunks while comfortably above the high watermark. Their
    // pages must be on the chunk stacks: full magazines are broken up first.
    const uint64_t keep = uint64_t{cfg.high_pages} + ppc;
    if (shared->chunks.load(std::memory_order_relaxed) > cfg.initial_chunks) {
      while (mag_to_loose(keep)) {
      }
    }
    const uint32_t limit = shared->chunk_limit.load(std::memory_order_relaxed);
    for (uint32_t c = limit; c-- > 0;) {
      if (shared->chunks.load(std::memory_order_relaxed) <= cfg.initial_chunks) break;
      if (chunks[c].state.load(std::memory_order_relaxed) != kChunkActive) continue;
      if (depot_clean(shared->depot.load(std::memory_order_relaxed)) < keep) break;
      (void)try_retire(c);
    }
    surplus_since.reset();
  }
  // Loose pages (a fresh chunk, what a shrink left) into magazines, so that refills move
  // whole magazines; never while the depot is near the low watermark.
  while (loose_to_mag(std::max<uint64_t>(cfg.low_pages, mag_pages))) {
  }
  if (zeroed > 0 || grew) pages_cv.notify_all();
  return zeroed > 0 || grew;
}

// The one worker loop, whichever thread runs it (the pool's own or a caller's through
// run_worker). Passes follow each other at once while they make progress or an
// allocation asked for growth; otherwise the worker sleeps for worker_poll, because the
// atomic path may make no system call and so cannot wake it. Only a non-atomic
// allocation that starts to wait (grow_requested) and stop_worker() wake it early.
void PagePool::Impl::worker_loop() {
  for (;;) {
    const bool busy = worker_pass();
    std::unique_lock lock(wait_mu);
    if (stop) return;
    if (busy || grow_requested) {
      grow_requested = false;
      continue;
    }
    worker_cv.wait_for(lock, cfg.worker_poll, [this] { return stop || grow_requested; });
    if (stop) return;
    grow_requested = false;
  }
}

// Under wait_mu, so a worker between its stop check and its sleep cannot miss the
// notification; also ends non-atomic waits, which check stop before each slice.
void PagePool::Impl::request_stop() {
  {
    std::lock_guard lock(wait_mu);
    stop = true;
  }
  worker_cv.notify_all();
}

void PagePool::run_worker_once() {
  (void)impl_->worker_pass();
}

void PagePool::run_worker() {
  impl_->worker_loop();
}

void PagePool::stop_worker() {
  impl_->request_stop();
}

}  // namespace labyrinth::alloc
