// allocator/page_pool.cc — the pool's public paths: create and destroy, attaching and
// detaching caches, and the atomic exclusive alloc, free and transfer calls.
//
// The fast paths are here, with PagePool::Impl's operations inlined from
// page_pool_impl.h (the records and the concurrency design: pool_layout.h); the worker
// is in pool_worker.cc, stats and the audit in pool_stats.cc.
#include "allocator/page_pool.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <iterator>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>

#include "allocator/page_pool_impl.h"

namespace labyrinth::alloc {

// ===================== construction =====================

namespace {

// Pool ids are not reused within a process, so a handle from a destroyed pool fails
// another pool's check (Error::foreign_pool) instead of naming one of its pages.
std::atomic<uint32_t> g_next_pool_id{1};

bool is_pow2(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// Each bound keeps an encoding or a layout valid: page indices below 2^31 (32-bit index
// fields with kNil reserved), the window where the VM's memory map leaves room for it
// (1 GiB aligned, above 4 GiB, below 2^46), two equal magazines per cache, and a
// power-of-two dirty ring no smaller than the cache.
std::expected<void, Error> validate(const PoolConfig& c) {
  constexpr uint64_t kGiB = 1ull << 30;
  if (!is_pow2(c.chunk_bytes) || c.chunk_bytes < kPageSize || c.chunk_bytes > kGiB) {
    return std::unexpected(Error::bad_config);
  }
  if (c.backing != Backing::small_pages && c.chunk_bytes < (2u << 20)) {
    return std::unexpected(Error::bad_config);
  }
  if (c.max_chunks == 0 || c.initial_chunks > c.max_chunks)
    return std::unexpected(Error::bad_config);
  const uint64_t ppc = c.chunk_bytes / kPageSize;
  const uint64_t max_pages = ppc * c.max_chunks;
  if (max_pages >= (1ull << 31)) return std::unexpected(Error::bad_config);
  if (c.window_gpa % kGiB != 0 || c.window_gpa < 4 * kGiB)
    return std::unexpected(Error::bad_config);
  if (c.window_size < max_pages * kPageSize) return std::unexpected(Error::bad_config);
  if (c.window_gpa + c.window_size < c.window_gpa) return std::unexpected(Error::bad_config);
  if (c.window_gpa + c.window_size > (1ull << 46)) return std::unexpected(Error::bad_config);
  if (!(c.min_pages <= c.low_pages && c.low_pages <= c.high_pages)) {
    return std::unexpected(Error::bad_config);
  }
  if (c.high_pages > max_pages) return std::unexpected(Error::bad_config);
  if (c.max_caches == 0 || c.max_caches > 1024) return std::unexpected(Error::bad_config);
  if (c.cache_capacity < 2 || c.cache_capacity > 4096 || c.cache_capacity % 2 != 0) {
    return std::unexpected(Error::bad_config);
  }
  if (!is_pow2(c.dirty_ring) || c.dirty_ring < c.cache_capacity || c.dirty_ring > (1u << 20)) {
    return std::unexpected(Error::bad_config);
  }
  return {};
}

constexpr size_t align_up(size_t v, size_t a) {
  return (v + a - 1) / a * a;
}

}  // namespace

void* PagePool::operator new(std::size_t bytes) {
  return pinned_new(bytes);
}
void PagePool::operator delete(void* p, std::size_t bytes) noexcept {
  pinned_delete(p, bytes);
}

// Takes only what cannot fail; create() fills the Impl and hands out the pool only when
// it is complete.
PagePool::PagePool(const PoolConfig& cfg, MemslotSink& sink)
    : cfg_(cfg),
      pool_id_(g_next_pool_id.fetch_add(1, std::memory_order_relaxed)),
      impl_(std::make_unique<Impl>(cfg, sink)) {}

// Everything the atomic path will ever touch is reserved, pinned and placed here, once:
// afterwards only the worker maps or unmaps guest memory, a chunk at a time.
std::expected<std::unique_ptr<PagePool>, Error> PagePool::create(const PoolConfig& cfg,
                                                                 MemslotSink& sink) {
  if (auto ok = validate(cfg); !ok) return std::unexpected(ok.error());
  std::unique_ptr<PagePool> pool;
  try {
    pool.reset(new PagePool(cfg, sink));
  } catch (const std::bad_alloc&) {
    return std::unexpected(Error::pin_failed);
  }
  Impl& m = *pool->impl_;
  m.pool_id = pool->pool_id_;
  m.ppc = static_cast<uint32_t>(cfg.chunk_bytes / kPageSize);
  m.ppc_shift = static_cast<uint32_t>(std::countr_zero(m.ppc));
  m.max_pages = m.ppc * cfg.max_chunks;
  auto va = VaReservation::create(size_t{cfg.max_chunks} * cfg.chunk_bytes,
                                  cfg.backing == Backing::small_pages ? kPageSize : (2u << 20));
  if (!va) return std::unexpected(va.error());
  m.va = std::move(*va);
  m.host_base = m.va.data();

  // One pinned region for all metadata the atomic path may touch.
  size_t off = 0;
  const size_t shared_off = off;
  off = align_up(off + sizeof(SharedHot), 64);
  const size_t chunks_off = off;
  off = align_up(off + sizeof(ChunkHot) * cfg.max_chunks, 64);
  const size_t pm_off = off;
  off = align_up(off + sizeof(PageMeta) * m.max_pages, 64);
  const size_t caches_off = off;
  off = align_up(off + sizeof(PageCache) * cfg.max_caches, 64);
  // Magazines: enough that the empty stack never runs dry (see Magazines in pool_layout.h).
  m.mag_pages = cfg.cache_capacity / 2;
  m.mags = m.max_pages / m.mag_pages + 2 * cfg.max_caches + 2;
  const size_t mag_next_off = off;
  off = align_up(off + sizeof(std::atomic<uint32_t>) * m.mags, 64);
  const size_t mag_slots_off = off;
  off = align_up(off + sizeof(uint32_t) * m.mag_pages * m.mags, 64);
  const size_t rings_off = off;
  off += sizeof(uint32_t) * size_t{cfg.dirty_ring} * cfg.max_caches;
  // 4 KiB pages: a transparent huge page here was tried (fewer TLB misses on a cold
  // atomic path) but gained little measurable and pinned 2 MiB more per VM.
  auto meta = PinnedRegion::create(align_up(off, kPageSize), Backing::small_pages);
  if (!meta) return std::unexpected(meta.error());
  m.meta = std::move(*meta);
  std::byte* base = m.meta.data();
  // Every type placed here is trivially destructible; the region's unmap ends them.
  m.shared = new (base + shared_off) SharedHot();
  m.chunks = reinterpret_cast<ChunkHot*>(base + chunks_off);
  for (uint32_t c = 0; c < cfg.max_chunks; ++c) new (&m.chunks[c]) ChunkHot();
  m.pm = reinterpret_cast<PageMeta*>(base + pm_off);
  for (uint32_t i = 0; i < m.max_pages; ++i) {
    new (&m.pm[i]) PageMeta{{desc_word(kOffline, 0, kNoOwner)}, {kNil}, {0}};
  }
  m.mag_next = reinterpret_cast<std::atomic<uint32_t>*>(base + mag_next_off);
  for (uint32_t i = 0; i < m.mags; ++i) new (&m.mag_next[i]) std::atomic<uint32_t>(kNil);
  m.mag_slots = reinterpret_cast<uint32_t*>(base + mag_slots_off);
  for (uint32_t i = m.mags; i-- > 0;) m.push_mag(m.shared->empty_head, i);
  m.caches = reinterpret_cast<PageCache*>(base + caches_off);
  auto* rings = reinterpret_cast<uint32_t*>(base + rings_off);
  for (uint32_t i = 0; i < cfg.max_caches; ++i) {
    new (&m.caches[i]) PageCache();
    m.caches[i].dirty = rings + size_t{cfg.dirty_ring} * i;
    m.caches[i].ring_mask = cfg.dirty_ring - 1;
    m.caches[i].pool_id = m.pool_id;
    m.caches[i].pm = m.pm;
    m.caches[i].host_base = m.host_base;
    m.caches[i].window_gpa = cfg.window_gpa;
    m.caches[i].max_pages = m.max_pages;
  }
  m.cold.resize(cfg.max_chunks);

  // add_chunk is a worker job and expects worker_mu; if one fails, the destructor unmaps
  // the chunks mapped so far.
  {
    std::lock_guard lock(m.worker_mu);
    for (uint32_t i = 0; i < cfg.initial_chunks; ++i) {
      if (!m.add_chunk()) return std::unexpected(m.last_grow_error);
    }
  }
  if (cfg.start_worker) {
    try {
      m.worker = std::thread([&m] { m.worker_loop(); });
    } catch (const std::system_error&) {
      return std::unexpected(Error::thread_failed);
    }
  }
  return pool;
}

// The worker goes first: it is the only other thread that maps or unmaps chunks.
PagePool::~PagePool() {
  Impl& m = *impl_;
  if (m.worker.joinable()) {
    m.request_stop();
    m.worker.join();
  }
  // A create() that failed before the metadata region existed (no address space, no
  // pinnable memory) leaves no chunk table: nothing was mapped, nothing to unmap.
  if (m.chunks == nullptr) return;
  std::lock_guard lock(m.worker_mu);
  for (uint32_t c = 0; c < cfg_.max_chunks; ++c) {
    const uint32_t st = m.chunks[c].state.load(std::memory_order_relaxed);
    if (st == kChunkActive || st == kChunkZombie) {
      // VM teardown: if KVM refuses, the memory still goes (KVM takes no page references
      // on userspace memory; the unmap invalidates its mappings).
      if (!m.sink.unmap(m.cold[c].memslot)) m.shared->unmap_failures.inc_shared();
      m.cold[c].region = PinnedRegion();
    }
  }
}

// ===================== caches =====================

// Cache slots are fixed at create() (they live in pinned memory with copies of the
// pool's constants); attaching takes a free slot and gives it two empty magazines.
std::expected<PageCache*, Error> PagePool::attach_cache() {
  Impl& m = *impl_;
  std::lock_guard lock(m.attach_mu);
  for (uint32_t i = 0; i < cfg_.max_caches; ++i) {
    PageCache& c = m.caches[i];
    if (c.pool.load(std::memory_order_relaxed) == nullptr) {
      // Two empty magazines (there are always enough: see Magazines at the top).
      const uint32_t loaded = m.pop_mag(m.shared->empty_head);
      const uint32_t prev = m.pop_mag(m.shared->empty_head);
      if (loaded == kNil || prev == kNil) {
        if (loaded != kNil) m.push_mag(m.shared->empty_head, loaded);
        return std::unexpected(Error::no_cache_slot);
      }
      c.loaded = loaded;
      c.prev = prev;
      c.slots = m.slots_of(loaded);
      c.count.store(0, std::memory_order_relaxed);
      c.prev_count.store(0, std::memory_order_relaxed);
      // The ring is empty (fresh, or drained by detach): continue from where it stands.
      c.dirty_head_seen = c.dirty_head.load(std::memory_order_acquire);
      c.hint = 0;
      c.pool.store(&m, std::memory_order_relaxed);
      return &c;
    }
  }
  return std::unexpected(Error::no_cache_slot);
}

// A detached cache must leave nothing behind: its clean pages return to the depot, its
// freed pages still waiting in its ring go to the shared dirty list, and only then is
// the slot marked free, so the next attach starts from an empty cache.
void PagePool::detach_cache(PageCache* cache) {
  Impl& m = *impl_;
  if (!m.cache_ok(cache)) {
    m.count_violation(Error::bad_cache);
    return;
  }
  // Both magazines' pages back to the depot (whole magazines stay whole), the two
  // magazines themselves to the empty stack.
  const uint32_t n = cache->count.load(std::memory_order_relaxed);
  const uint32_t pn = cache->prev_count.load(std::memory_order_relaxed);
  if (n == m.mag_pages) {
    m.give_full(cache->loaded);
  } else {
    m.push_clean(cache->slots, n);
    m.push_mag(m.shared->empty_head, cache->loaded);
  }
  if (pn == m.mag_pages) {
    m.give_full(cache->prev);
  } else {
    m.push_mag(m.shared->empty_head, cache->prev);
  }
  cache->count.store(0, std::memory_order_relaxed);
  cache->prev_count.store(0, std::memory_order_relaxed);
  cache->slots = nullptr;
  {
    // The worker consumes rings under worker_mu: take over what it has not reached yet.
    std::lock_guard lock(m.worker_mu);
    uint32_t batch[256];
    while (uint32_t k = m.take_ring(*cache, batch, std::size(batch))) m.push_dirty(batch, k);
  }
  std::lock_guard lock(m.attach_mu);
  cache->pool.store(nullptr, std::memory_order_relaxed);
}

// ===================== the atomic path =====================

std::expected<Page, Error> PagePool::alloc_page(uint32_t flags, OwnerId owner, PageCache* cache) {
  Impl& m = *impl_;
  // The fast path: an atomic allocation served from the loaded magazine. Everything else
  // (refills, refusals, non-atomic callers) is out of line, so this needs no saved
  // registers.
  if (flags == kGfpAtomicExclusive && owner != kNoOwner && m.cache_ok(cache)) [[likely]] {
    const uint32_t n = cache->count.load(std::memory_order_relaxed);
    if (n != 0) [[likely]] {
      const uint32_t idx = cache->slots[n - 1];
      cache->count.store(n - 1, std::memory_order_relaxed);
      cache->alloc_cache.inc();
      return Impl::hand_out(*cache, idx, owner);
    }
  }
  return alloc_page_slow(flags, owner, cache);
}

// Everything alloc_page's fast path does not serve: bad arguments, the loaded magazine
// empty (reload from the depot), and non-atomic callers, who may wait for the worker.
std::expected<Page, Error> PagePool::alloc_page_slow(uint32_t flags, OwnerId owner,
                                                     PageCache* cache) {
  Impl& m = *impl_;
  if (!(flags & kGfpExclusive) || (flags & ~kGfpAtomicExclusive) != 0) {
    return std::unexpected(Error::bad_flags);
  }
  if (owner == kNoOwner) return std::unexpected(Error::bad_owner);

  if (flags & kGfpAtomic) {
    if (!m.cache_ok(cache)) {
      m.count_violation(Error::bad_cache);
      return std::unexpected(Error::bad_cache);
    }
    // The fast path served every valid call that found a page in the loaded magazine:
    // here it is empty.
    const uint32_t n = m.reload(*cache);
    if (n == 0) {
      cache->fail_exhausted.inc();
      return std::unexpected(Error::exhausted);
    }
    const uint32_t idx = cache->slots[n - 1];
    cache->count.store(n - 1, std::memory_order_relaxed);
    return m.hand_out(idx, owner);
  }

  // Non-atomic: never below min_pages; may wait for the worker (see page_pool.h).
  const auto deadline = std::chrono::steady_clock::now() + cfg_.wait_timeout;
  bool waited = false;
  for (;;) {
    if (const Impl::Claim c = m.claim_one(); c.loose == 1 || c.mag) {
      uint32_t idx = kNil;
      if (c.mag) {  // only full magazines were left: keep one page, the rest go loose
        const uint32_t mag = m.pop_claimed_mag();
        uint32_t* slots = m.slots_of(mag);
        idx = slots[m.mag_pages - 1];
        m.push_clean(slots, m.mag_pages - 1);
        m.push_mag(m.shared->empty_head, mag);
      } else {
        uint32_t hint = 0;
        m.pop_claimed(&idx, 1, &hint);
      }
      m.shared->alloc_wait.inc_shared();
      if (waited) m.shared->alloc_waited.inc_shared();
      return m.hand_out(idx, owner);
    }
    const uint64_t clean = m.depot_clean(m.shared->depot.load(std::memory_order_relaxed));
    if (m.shared->chunks.load(std::memory_order_relaxed) >= cfg_.max_chunks &&
        clean + m.dirty_pending() <= cfg_.min_pages) {
      // No growth can come, and zeroing what is freed would not lift the depot above the
      // reserve either: waiting could only end in a timeout.
      if (clean > 0) {
        m.shared->fail_reserve_only.inc_shared();
        return std::unexpected(Error::reserve_only);
      }
      m.shared->fail_exhausted_wait.inc_shared();
      return std::unexpected(Error::exhausted);
    }
    std::unique_lock lock(m.wait_mu);
    if (m.stop || std::chrono::steady_clock::now() >= deadline) {
      m.shared->fail_timed_out.inc_shared();
      return std::unexpected(Error::timed_out);
    }
    m.grow_requested = true;
    m.worker_cv.notify_one();
    if (!waited) m.shared->alloc_wait_began.inc_shared();
    waited = true;
    // Short slices: pages can also come back through frees, which never notify.
    m.pages_cv.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
  }
}

// alloc_page's atomic path for n pages: the cache's count is read and written once; every
// page handed out is still counted once, by its path (cache, depot, reserve), since each
// reload counts the page it serves.
std::expected<uint32_t, Error> PagePool::alloc_pages(uint32_t flags, OwnerId owner,
                                                     PageCache* cache, Page* out, uint32_t n) {
  Impl& m = *impl_;
  if (flags != kGfpAtomicExclusive) return std::unexpected(Error::bad_flags);
  if (owner == kNoOwner) return std::unexpected(Error::bad_owner);
  if (!m.cache_ok(cache)) {
    m.count_violation(Error::bad_cache);
    return std::unexpected(Error::bad_cache);
  }
  uint32_t have = cache->count.load(std::memory_order_relaxed);
  uint32_t k = 0;
  uint32_t reloads = 0;  // each counted itself (alloc_depot/alloc_reserve/alloc_cache)
  while (k < n) {
    if (have == 0) {
      have = m.reload(*cache);
      if (have == 0) break;
      ++reloads;
    }
    const uint32_t take = std::min(have, n - k);
    for (uint32_t j = 0; j < take; ++j) out[k++] = m.hand_out(cache->slots[--have], owner);
  }
  cache->count.store(have, std::memory_order_relaxed);
  if (k == 0) {
    if (n > 0) cache->fail_exhausted.inc();
    return n > 0 ? std::unexpected(Error::exhausted) : std::expected<uint32_t, Error>(0);
  }
  cache->alloc_cache.inc(k - reloads);
  return k;
}

std::expected<void, Error> PagePool::free_page(const Page& page, OwnerId owner, PageCache* cache) {
  Impl& m = *impl_;
  // The fast path: a handle whose every field matches its page exactly, freed into a
  // valid cache. It is the same check as take_back's, folded: the
  // handle's fields against the pool (one compare each), then the descriptor word against
  // the one word the handle implies — {allocated, generation, owner}; owner kNoOwner
  // never matches, an allocated page always has an owner — and era against the
  // generation's upper bits. Anything else, every refusal included, goes to
  // free_page_slow, which checks again from the start, decides and counts.
  if (m.cache_ok(cache) && Impl::handle_matches(*cache, page)) [[likely]] {
    const uint32_t idx = page.index;
    const uint64_t gen = page.generation;
    PageMeta& d = cache->pm[idx];
    const Impl::RingSlot slot = Impl::ring_slot(*cache);
    // acquire, then era: as in take_back (the era read belongs to this word).
    uint64_t w = d.word.load(std::memory_order_acquire);
    if (w == desc_word(kAllocated, gen_low(gen), owner) &&
        d.era.load(std::memory_order_relaxed) == gen_era(gen) &&
        d.word.compare_exchange_strong(w, desc_word(kDirty, gen_low(gen), kNoOwner),
                                       std::memory_order_acq_rel, std::memory_order_acquire))
        [[likely]] {
      if (cfg_.zero_policy == ZeroPolicy::on_free) {
        m.recycle_freed(idx, gen_low(gen), cache);
      } else {
        m.queue_freed(*cache, idx, slot);
      }
      return {};
    }
  }
  return free_page_slow(page, owner, cache);
}

// The full check of a free, in the order that names the first thing wrong with the
// handle (pool, index, generation, addresses), then the same CAS as the fast path.
std::expected<void, Error> PagePool::free_page_slow(const Page& page, OwnerId owner,
                                                    PageCache* cache) {
  Impl& m = *impl_;
  if (auto ok = m.check_handle(page); !ok) {
    m.count_violation(ok.error());
    return ok;
  }
  if (cache != nullptr && !m.cache_ok(cache)) {  // another pool's cache or a detached one
    m.count_violation(Error::bad_cache);
    return std::unexpected(Error::bad_cache);
  }
  if (auto ok = m.take_back(page, owner); !ok) return ok;
  if (cfg_.zero_policy == ZeroPolicy::on_free) {
    m.recycle_now(page.index, gen_low(page.generation), cache);
  } else if (cache != nullptr) {
    m.queue_freed(*cache, page.index, Impl::ring_slot(*cache));
  } else {
    uint32_t idx = page.index;
    m.push_dirty(&idx, 1);
    m.shared->frees_uncached.inc_shared();
  }
  return {};
}

// Per page exactly free_page's checks and CAS; only the dirty ring's bookkeeping is
// batched. With on_free zeroing or no cache there is nothing to batch: one call each.
uint32_t PagePool::free_pages(const Page* pages, uint32_t n, OwnerId owner, PageCache* cache,
                              Error* first_error) {
  Impl& m = *impl_;
  Error first{};
  auto refuse = [&](Error e) {
    if (first == Error{}) first = e;
  };
  uint32_t freed = 0;
  if (cache != nullptr && !m.cache_ok(cache)) {
    m.count_violation(Error::bad_cache);
    refuse(Error::bad_cache);
  } else if (cfg_.zero_policy == ZeroPolicy::on_free || cache == nullptr) {
    for (uint32_t k = 0; k < n; ++k) {
      if (auto ok = free_page(pages[k], owner, cache); ok) {
        ++freed;
      } else {
        refuse(ok.error());
      }
    }
  } else {
    // ZeroPolicy::worker with a cache: the ring's room is looked up once and the tail
    // published once, after every entry is written.
    uint32_t t = cache->dirty_tail.load(std::memory_order_relaxed);
    uint32_t room = m.ring_room(*cache, t, n);
    for (uint32_t k = 0; k < n; ++k) {
      const Page& page = pages[k];
      auto ok = m.check_handle(page);
      if (ok) {
        ok = m.take_back(page, owner);
      } else {
        m.count_violation(ok.error());
      }
      if (!ok) {
        refuse(ok.error());
        continue;
      }
      room = m.queue_dirty(*cache, page.index, &t, room);
      ++freed;
    }
    cache->dirty_tail.store(t, std::memory_order_release);
    cache->frees.inc(freed);
  }
  if (first_error != nullptr) *first_error = first;
  return freed;
}

// The same checks and CAS as a free, ending in {allocated, same generation, to}: a
// transfer does not start a new life of the page, so `from`'s handle stays valid for `to`.
std::expected<Page, Error> PagePool::transfer(const Page& page, OwnerId from, OwnerId to) {
  Impl& m = *impl_;
  if (auto ok = m.check_handle(page); !ok) {
    m.count_violation(ok.error());
    return std::unexpected(ok.error());
  }
  if (to == kNoOwner) return std::unexpected(Error::bad_owner);
  const uint32_t low = gen_low(page.generation);
  std::atomic<uint64_t>& word = m.pm[page.index].word;
  uint64_t w = word.load(std::memory_order_acquire);  // as in free_page
  for (;;) {
    if (auto ok = m.check_word(page, w, from); !ok) {
      m.count_violation(ok.error());
      return std::unexpected(ok.error());
    }
    if (word.compare_exchange_weak(w, desc_word(kAllocated, low, to), std::memory_order_acq_rel,
                                   std::memory_order_acquire)) {
      break;
    }
  }
  m.shared->transfers.inc_shared();
  return page;
}

// transfer() for a caller who has only an address (a guest's return ring): the word
// loaded is the only witness, so every check is made on it and the CAS from it.
std::expected<Page, Error> PagePool::transfer_gpa(uint64_t gpa, OwnerId from, OwnerId to,
                                                  uint64_t generation) {
  Impl& m = *impl_;
  auto idx = m.index_of(gpa);
  if (!idx) {
    m.count_violation(idx.error());
    return std::unexpected(idx.error());
  }
  if (to == kNoOwner) return std::unexpected(Error::bad_owner);
  std::atomic<uint64_t>& word = m.pm[*idx].word;
  uint64_t w = word.load(std::memory_order_acquire);
  for (;;) {
    Error e{};
    const uint32_t era = m.pm[*idx].era.load(std::memory_order_relaxed);  // after w: see above
    if (desc_state(w) == kOffline) {
      e = Error::out_of_window;
    } else if (generation != kAnyGeneration &&
               (desc_gen(w) != gen_low(generation) || era != gen_era(generation))) {
      e = Error::stale_handle;
    } else if (desc_state(w) != kAllocated) {
      e = Error::double_free;
    } else if (from == kNoOwner || desc_owner(w) != from) {
      e = Error::not_owner;
    }
    if (e != Error{}) {
      m.count_violation(e);
      return std::unexpected(e);
    }
    if (word.compare_exchange_weak(w, desc_word(kAllocated, desc_gen(w), to),
                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
      m.shared->transfers.inc_shared();
      // The page is `to`'s now: allocated, so its chunk stays mapped.
      return m.make_page(*idx, full_gen(era, desc_gen(w)));
    }
  }
}

// Read-only, so no CAS: the word read twice, equal both times, stands in for it.
std::expected<Page, Error> PagePool::lookup_gpa(uint64_t gpa) const {
  const Impl& m = *impl_;
  auto idx = m.index_of(gpa);
  if (!idx) {
    m.count_violation(idx.error());
    return std::unexpected(idx.error());
  }
  uint64_t w = m.pm[*idx].word.load(std::memory_order_acquire);
  for (;;) {
    if (desc_state(w) == kOffline) {
      m.count_violation(Error::out_of_window);
      return std::unexpected(Error::out_of_window);
    }
    if (desc_state(w) != kAllocated) return std::unexpected(Error::double_free);
    const Page p =
        m.make_page(*idx, full_gen(m.pm[*idx].era.load(std::memory_order_relaxed), desc_gen(w)));
    // Allocated before and after reading era and host, same word: the page stayed
    // allocated throughout, so its chunk could not be retired and p.host is valid.
    const uint64_t again = m.pm[*idx].word.load(std::memory_order_acquire);
    if (again == w) return p;
    w = again;
  }
}

// Diagnostics and tests: a refusal here is reported, not counted as a violation (nothing
// was attempted on the page).
std::expected<OwnerId, Error> PagePool::owner_of(const Page& page) const {
  if (auto ok = impl_->check_handle(page); !ok) return std::unexpected(ok.error());
  const uint64_t w = impl_->pm[page.index].word.load(std::memory_order_acquire);
  if (desc_state(w) == kOffline) return std::unexpected(Error::out_of_window);
  if (desc_gen(w) != gen_low(page.generation) ||
      impl_->pm[page.index].era.load(std::memory_order_relaxed) != gen_era(page.generation)) {
    return std::unexpected(Error::stale_handle);
  }
  return desc_state(w) == kAllocated ? desc_owner(w) : kNoOwner;
}

// Backing is declared with PinnedRegion; its names are the pool's (config, reports).
std::string_view to_string(Backing b) noexcept {
  switch (b) {
    case Backing::small_pages:
      return "4k";
    case Backing::thp:
      return "thp";
    case Backing::hugetlb:
      return "hugetlb";
  }
  return "?";
}

}  // namespace labyrinth::alloc
