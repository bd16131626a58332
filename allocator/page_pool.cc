// allocator/page_pool.cc — implementation of the atomic exclusive page pool.
//
// Concurrency design (who touches what, and how):
//
// Descriptor, one 16-byte PageMeta per page: the CAS word
//     [63:32] owner   [31:2] generation, low 30 bits   [1:0] state
//   beside `era`, the generation's upper 32 bits (62 in all: a handle is revived only
//   after 2^62 lives of its page, 146 years at one allocation per ns), and `next`, the
//   page's stack link. era changes only in hand_out, when the low bits wrap, while the
//   page is free and held by the allocating thread alone; it is stored before the word's
//   release store. A checker loads the word with acquire, then era, then CASes from the
//   word it loaded: success means the word did not change in between, so the era it read
//   belongs to that word (unless the page lived exactly 2^30 times between two adjacent
//   loads of one call — the same bound as the stacks' tags below).
//   state kFree      clean, in a depot stack or a cache's clean magazine
//         kAllocated owned by `owner`; generation was bumped when it was handed out
//         kDirty     freed, waiting to be zeroed (a cache's dirty buffer or the dirty list)
//         kOffline   its chunk is not mapped
//   Every ownership change (free, transfer, transfer_gpa) is a compare_exchange from the
//   exact word {kAllocated, handle.generation, caller} after the handle's every field was
//   checked against it: of two racing frees exactly one wins; a stale, forged or foreign
//   handle cannot match, so it is reported, never applied. Allocation
//   needs no CAS: the allocating thread took the page index exclusively from a stack.
//   Orders: allocation publishes the word with release; frees/transfers CAS with acq_rel
//   (pairs with the allocation's release, so the new owner sees the zeroed contents).
//
// Stacks (one per chunk for clean pages, one "dirty" list), tagged-index Treiber stacks:
//     head = [63] frozen | [62:32] tag (31 bits) | [31:0] top page index (kNil = empty)
//   Links live in next_[page]; a page is on at most one stack, so one link array serves
//   all of them. Push: write the chain's links (relaxed), then CAS head with release.
//   Pop (one or a batch): load head with acquire, walk up to N links, CAS head to the
//   N-th successor. Every successful CAS increments the tag, so a CAS succeeds only if
//   no push or pop happened since the head was read — then the walked links were
//   stable, which makes batch pop safe (ABA needs a stall across exactly 2^31 CASes on
//   one stack with the same top index: accepted, as in every tagged-pointer design).
//   Link loads may read values being rewritten concurrently; they are atomics (no data
//   race) and such a walk always ends in a failed CAS.
//   progress: lock-free (a CAS fails only because another thread's succeeded).
//
// Magazines (Bonwick, "Magazines and Vmem", 2001): an array of M = cache_capacity/2 page
//   indices, identified by its number. Every magazine is in exactly one place: a cache
//   (as its loaded or previous magazine), the depot's full stack (then it holds exactly
//   M clean pages), or the empty stack. Both stacks are tagged-index Treiber stacks like
//   the chunk stacks (links in mag_next_), so moving M pages between a cache and the depot
//   is one CAS plus the count update, and the pages' indices are read as an array (M/16
//   independent cache lines), never by a dependent walk of links the other core wrote.
//   A cache's loaded magazine may be partial; its previous one is always full or empty.
//   Alloc: from loaded; if empty and previous full, swap; else exchange the empty
//   previous for a full magazine from the depot (or take up to M loose pages).
//   Free (ZeroPolicy::on_free): into loaded; if full and previous empty, swap; else push
//   previous to the full stack, take an empty one, swap. The worker fills magazines from
//   the pages it zeroes. There are enough magazines that the empty stack never runs dry
//   (every full magazine holds M distinct pages: at most max_pages/M of them, plus two
//   per cache and one for the worker); if it did, the pages would go loose instead.
//
// Cache dirty rings (ZeroPolicy::worker): each cache's freed pages go into its own
//   single-producer/single-consumer ring. Producer: the cache's thread (writes the entry,
//   then dirty_tail with release). Consumer: the worker under worker_mu (reads
//   dirty_tail with acquire, the entries, then stores dirty_head with release; the
//   producer reads dirty_head with acquire only when the ring looks full, and then spills
//   the page to the shared dirty list). No freed page is ever out of the worker's reach.
//   Wait-free for both sides; indices are free-running, the ring size a power of two.
//
// Claims: one atomic word, depot = [63:32] unclaimed full magazines | [31:0] unclaimed
//   loose pages on chunk stacks; the depot's clean pages are M * mags + loose. An
//   allocator first claims a magazine or k loose pages by CAS on it (acquire; pairs with
//   the release increment that follows every push), then pops exactly what it claimed: a
//   claim guarantees it is there, so the pop terminates (for loose pages, a scan of the
//   chunk stacks). The atomic reserve is decided at claim time: non-atomic callers may
//   not take the clean count below min_pages; atomic callers may take it to zero (and are
//   counted as "reserve"). A non-atomic caller that needs one page when only full
//   magazines are left claims a whole magazine, takes one page and returns the rest
//   loose (M-1 pages are invisible meanwhile: a setup path, never the atomic one).

// Chunk retirement (worker only): first turn full magazines back into loose pages, one
//   at a time while the depot stays above the high watermark plus a chunk (so at most
//   M pages are ever invisible, and only while plenty of others are not). Then claim a
//   whole chunk's worth of loose pages, set the frozen
//   bit on the chunk's head (pops and pushes fail on a frozen head; a push that fails
//   diverts its pages to the dirty list), then count the frozen stack: if it holds every
//   page of the chunk, no page of it is anywhere else and the chunk can be unmapped;
//   otherwise unfreeze and return the claim. Because the worker claimed >= what the
//   frozen stack holds, every other outstanding claim is still covered by unfrozen stacks.
#include "allocator/page_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace labyrinth::alloc {

namespace {

// ---- descriptor word ----
enum : uint64_t { kFree = 0, kAllocated = 1, kDirty = 2, kOffline = 3 };
constexpr uint32_t kGenMask = (1u << 30) - 1;
constexpr unsigned kGenLowBits = 30;
constexpr uint64_t kGenLimit = 1ull << kGenerationBits;
static_assert(kGenLowBits + 32 == kGenerationBits);
constexpr uint64_t desc_word(uint64_t state, uint32_t gen, OwnerId owner) {
  return (static_cast<uint64_t>(owner) << 32) | (static_cast<uint64_t>(gen & kGenMask) << 2) |
         state;
}
constexpr uint64_t desc_state(uint64_t w) {
  return w & 3;
}
constexpr uint32_t desc_gen(uint64_t w) {
  return static_cast<uint32_t>(w >> 2) & kGenMask;
}
constexpr OwnerId desc_owner(uint64_t w) {
  return static_cast<OwnerId>(w >> 32);
}
constexpr uint64_t full_gen(uint32_t era, uint32_t low) {
  return (uint64_t{era} << kGenLowBits) | low;
}
constexpr uint32_t gen_low(uint64_t g) {
  return static_cast<uint32_t>(g) & kGenMask;
}
constexpr uint32_t gen_era(uint64_t g) {
  return static_cast<uint32_t>(g >> kGenLowBits);
}

// ---- stack head word ----
constexpr uint32_t kNil = 0xFFFFFFFFu;
constexpr uint64_t kFrozen = 1ull << 63;
constexpr uint64_t kTagMask = (1ull << 31) - 1;
constexpr uint32_t head_top(uint64_t h) {
  return static_cast<uint32_t>(h);
}
constexpr uint64_t head_tag(uint64_t h) {
  return (h >> 32) & kTagMask;
}
constexpr uint64_t make_head(uint32_t top, uint64_t tag, bool frozen) {
  return (frozen ? kFrozen : 0) | (((tag)&kTagMask) << 32) | top;
}

// Counter owned by one thread: a relaxed load + store, no locked instruction; other
// threads read it (relaxed) for snapshots.
inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
// Counter shared between threads: only on rare paths (violations, worker events).
inline void bump_shared(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

std::atomic<uint32_t> g_next_pool_id{1};

enum ChunkState : uint32_t {
  kChunkEmpty = 0,
  kChunkActive = 1,
  kChunkZombie = 2,  // retired but KVM refused to drop its memslot: pinned forever, unused
};

}  // namespace

// Per-page metadata (see the top of this file).
struct PageMeta {
  std::atomic<uint64_t> word;
  std::atomic<uint32_t> next;
  std::atomic<uint32_t> era;
};
static_assert(sizeof(PageMeta) == 16, "four pages' metadata per cache line");

// Per-context cache. Lives in the pool's pinned metadata region; used by one thread
// at a time (the context that attached it), read by stats() through relaxed atomics.
// The first two lines are everything the atomic alloc/free fast path reads or writes,
// the pool's constants included (copies made at create()): the fast path's loads then
// start from the cache pointer it was given, not from the pool object through its Impl.
class alignas(64) PageCache {
 public:
  uint32_t* slots = nullptr;            // the loaded magazine's page indices
  std::atomic<uint32_t> count{0};       // pages in the loaded magazine
  std::atomic<uint32_t> prev_count{0};  // pages in the previous magazine: 0 or M
  // The pool while attached, nullptr while detached: written under Impl::attach_mu,
  // read by the atomic path (one load decides "this pool's cache, attached").
  std::atomic<PagePool::Impl*> pool{nullptr};
  std::atomic<uint32_t> dirty_tail{0};  // ring producer: entries written (free-running)
  uint32_t dirty_head_seen = 0;         // producer's last view of dirty_head
  uint32_t ring_mask = 0;
  uint32_t pool_id = 0;       // the pool's constants (Impl's fields of the same names)
  uint32_t* dirty = nullptr;  // ring of freed pages for the worker (ring_mask + 1 entries)
  PageMeta* pm = nullptr;
  std::byte* host_base = nullptr;
  // Second line: the rest of the constants, the fast path's counters (owner-written).
  uint64_t window_gpa = 0;
  uint32_t max_pages = 0;
  uint32_t loaded = 0;  // magazine numbers
  uint32_t prev = 0;
  uint32_t hint = 0;  // chunk where the last loose refill found pages
  std::atomic<uint64_t> alloc_cache{0};
  std::atomic<uint64_t> frees{0};
  std::atomic<uint64_t> alloc_depot{0};
  std::atomic<uint64_t> alloc_reserve{0};
  std::atomic<uint64_t> fail_exhausted{0};
  std::atomic<uint64_t> refills{0};
  std::atomic<uint64_t> flushes{0};
  // Consumer side, own line: the worker's progress through the ring.
  alignas(64) std::atomic<uint32_t> dirty_head{0};

  uint32_t dirty_pending() const {  // head first: then tail >= head
    const uint32_t h = dirty_head.load(std::memory_order_relaxed);
    return dirty_tail.load(std::memory_order_relaxed) - h;
  }
};
static_assert(offsetof(PageCache, window_gpa) == 64 && offsetof(PageCache, frees) < 128,
              "fast-path fields fit two lines");

// Hot chunk state read by the atomic path. Pinned, one cache line each.
struct alignas(64) ChunkHot {
  std::atomic<uint64_t> head{make_head(kNil, 0, true)};
  std::atomic<uint32_t> state{kChunkEmpty};
};

// Shared counters and lists, pinned.
struct SharedHot {
  // The depot's three words share one line: a refill (claim, pop a full magazine, push
  // the empty one) and a flush (pop an empty magazine, push the full one, count it) each
  // touch all three, so on separate lines every magazine exchange moved three lines
  // between the cores; on one line it moves one, and the later two read-modify-writes hit
  // the local cache.
  // [63:32] unclaimed full magazines | [31:0] unclaimed loose pages (see Claims above).
  alignas(64) std::atomic<uint64_t> depot{0};
  std::atomic<uint64_t> full_head{make_head(kNil, 0, false)};  // magazine stacks
  std::atomic<uint64_t> empty_head{make_head(kNil, 0, false)};
  alignas(64) std::atomic<uint64_t> dirty_head{make_head(kNil, 0, false)};
  std::atomic<uint64_t> dirty_count{0};
  alignas(64) std::atomic<uint64_t> transfers{0};
  std::atomic<uint64_t> frees_uncached{0};
  std::atomic<uint64_t> violation_double_free{0};
  std::atomic<uint64_t> violation_not_owner{0};
  std::atomic<uint64_t> violation_stale{0};
  mutable std::atomic<uint64_t> violation_out_of_window{0};
  std::atomic<uint64_t> violation_foreign_pool{0};
  mutable std::atomic<uint64_t> violation_bad_handle{0};
  std::atomic<uint64_t> violation_bad_cache{0};
  std::atomic<uint64_t> alloc_wait{0};
  std::atomic<uint64_t> alloc_waited{0};
  std::atomic<uint64_t> alloc_wait_began{0};
  std::atomic<uint64_t> fail_reserve_only{0};
  std::atomic<uint64_t> fail_timed_out{0};
  std::atomic<uint64_t> fail_exhausted_wait{0};
  std::atomic<uint64_t> pages_zeroed{0};
  std::atomic<uint64_t> chunks_added{0};
  std::atomic<uint64_t> chunks_removed{0};
  std::atomic<uint64_t> grow_failures{0};
  std::atomic<uint64_t> unmap_failures{0};
  std::atomic<uint64_t> grow_on_failure{0};
  std::atomic<uint64_t> below_low_events{0};
  std::atomic<uint64_t> below_min_events{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> chunks_high_water{0};
  std::atomic<uint32_t> chunk_limit{0};  // slots [0, limit) may hold chunks
};

namespace {
// Objects the atomic path dereferences (PagePool, its Impl) are allocated from their own
// pinned mapping: pre-faulted, mlock'ed, never swapped, so reading them cannot fault.
void* pinned_new(std::size_t bytes) {
  void* p = pinned_alloc(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
void pinned_delete(void* p, std::size_t bytes) noexcept {
  pinned_free(p, bytes);
}
}  // namespace

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
      bump(c.alloc_cache);
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
    bump(c.refills);
    bump(cl.reserve ? c.alloc_reserve : c.alloc_depot);
    return n;
  }
  // The cache's loaded magazine is full (free path): if the previous one is full too it
  // goes to the depot and an empty one takes its place; then loaded and previous swap.
  // Returns the pages now loaded (0).
  // Out of line and cold: the fast path around it then needs no saved registers.
  [[gnu::noinline, gnu::cold]] uint32_t unload(PageCache& c) {
    if (c.prev_count.load(std::memory_order_relaxed) == mag_pages) {
      const uint32_t empty = pop_mag(shared->empty_head);
      if (empty == kNil) {  // not expected (see Magazines): the pages go loose instead
        push_clean(slots_of(c.prev), mag_pages);
      } else {
        give_full(c.prev);
        c.prev = empty;
      }
      bump(c.flushes);
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
  // Pops a magazine this thread claimed (it is on the full stack: see Claims).
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
        bump_shared(shared->violation_double_free);
        break;
      case Error::not_owner:
        bump_shared(shared->violation_not_owner);
        break;
      case Error::stale_handle:
        bump_shared(shared->violation_stale);
        break;
      case Error::out_of_window:
        bump_shared(shared->violation_out_of_window);
        break;
      case Error::foreign_pool:
        bump_shared(shared->violation_foreign_pool);
        break;
      case Error::bad_handle:
        bump_shared(shared->violation_bad_handle);
        break;
      case Error::bad_cache:
        bump_shared(shared->violation_bad_cache);
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
      bump_shared(shared->frees_uncached);
      return;
    }
    uint32_t n = cache->count.load(std::memory_order_relaxed);
    if (n == mag_pages) [[unlikely]]
      n = unload(*cache);
    cache->slots[n] = idx;
    cache->count.store(n + 1, std::memory_order_relaxed);
    bump(cache->frees);
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
      bump(c.flushes);
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
    bump(c.frees);
  }
  // queue_freed's full-ring case, out of line: look at the worker's progress again.
  [[gnu::noinline, gnu::cold]] void spill_freed(PageCache& c, uint32_t idx, uint32_t t) {
    uint32_t next = t;
    queue_dirty(c, idx, &next, ring_room(c, t, 1));
    c.dirty_tail.store(next, std::memory_order_release);
    bump(c.frees);
  }

  // ---- worker jobs (worker_mu held) ----
  void zero_and_recycle(uint32_t* idx, uint32_t n);
  bool mag_to_loose(uint64_t keep);
  bool loose_to_mag(uint64_t keep);
  uint64_t drain_dirty();
  bool add_chunk();
  bool try_retire(uint32_t c);
  bool worker_pass();  // true if it zeroed or grew (more work may be waiting)
  void worker_loop();
};

// ===================== construction =====================

namespace {

bool is_pow2(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

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

PagePool::PagePool(const PoolConfig& cfg, MemslotSink& sink)
    : cfg_(cfg),
      pool_id_(g_next_pool_id.fetch_add(1, std::memory_order_relaxed)),
      impl_(std::make_unique<Impl>(cfg, sink)) {}

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
  // Magazines: enough that the empty stack never runs dry (see Magazines at the top).
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

PagePool::~PagePool() {
  Impl& m = *impl_;
  if (m.worker.joinable()) {
    {
      std::lock_guard lock(m.wait_mu);
      m.stop = true;
    }
    m.worker_cv.notify_all();
    m.worker.join();
  }
  std::lock_guard lock(m.worker_mu);
  for (uint32_t c = 0; c < cfg_.max_chunks; ++c) {
    const uint32_t st = m.chunks[c].state.load(std::memory_order_relaxed);
    if (st == kChunkActive || st == kChunkZombie) {
      // VM teardown: if KVM refuses, the memory still goes (KVM takes no page references
      // on userspace memory; the unmap invalidates its mappings).
      if (!m.sink.unmap(m.cold[c].memslot)) m.shared->unmap_failures.fetch_add(1);
      m.cold[c].region = PinnedRegion();
    }
  }
}

// ===================== caches =====================

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
      bump(cache->alloc_cache);
      return Impl::hand_out(*cache, idx, owner);
    }
  }
  return alloc_page_slow(flags, owner, cache);
}

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
      bump(cache->fail_exhausted);
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
      bump_shared(m.shared->alloc_wait);
      if (waited) bump_shared(m.shared->alloc_waited);
      return m.hand_out(idx, owner);
    }
    const uint64_t clean = m.depot_clean(m.shared->depot.load(std::memory_order_relaxed));
    if (m.shared->chunks.load(std::memory_order_relaxed) >= cfg_.max_chunks &&
        clean + m.dirty_pending() <= cfg_.min_pages) {
      // No growth can come, and zeroing what is freed would not lift the depot above the
      // reserve either: waiting could only end in a timeout.
      if (clean > 0) {
        bump_shared(m.shared->fail_reserve_only);
        return std::unexpected(Error::reserve_only);
      }
      bump_shared(m.shared->fail_exhausted_wait);
      return std::unexpected(Error::exhausted);
    }
    std::unique_lock lock(m.wait_mu);
    if (m.stop || std::chrono::steady_clock::now() >= deadline) {
      bump_shared(m.shared->fail_timed_out);
      return std::unexpected(Error::timed_out);
    }
    m.grow_requested = true;
    m.worker_cv.notify_one();
    if (!waited) bump_shared(m.shared->alloc_wait_began);
    waited = true;
    // Short slices: pages can also come back through frees, which never notify.
    m.pages_cv.wait_until(
        lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)));
  }
}

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
    if (n > 0) bump(cache->fail_exhausted);
    return n > 0 ? std::unexpected(Error::exhausted) : std::expected<uint32_t, Error>(0);
  }
  bump(cache->alloc_cache, k - reloads);
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
    bump_shared(m.shared->frees_uncached);
  }
  return {};
}

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
    bump(cache->frees, freed);
  }
  if (first_error != nullptr) *first_error = first;
  return freed;
}

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
  bump_shared(m.shared->transfers);
  return page;
}

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
      bump_shared(m.shared->transfers);
      // The page is `to`'s now: allocated, so its chunk stays mapped.
      return m.make_page(*idx, full_gen(era, desc_gen(w)));
    }
  }
}

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

// ===================== worker =====================

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
  bump_shared(shared->chunks_added);
  // release: the chunk's stack is complete before anyone can claim its pages.
  shared->depot.fetch_add(ppc, std::memory_order_release);
  return true;
}

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
    bump_shared(shared->unmap_failures);
    shared->chunks.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  chunks[c].state.store(kChunkEmpty, std::memory_order_release);
  cold[c].region = PinnedRegion();
  shared->chunks.fetch_sub(1, std::memory_order_relaxed);
  bump_shared(shared->chunks_removed);
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

bool PagePool::Impl::loose_to_mag(uint64_t keep) {
  uint64_t d = shared->depot.load(std::memory_order_relaxed);
  do {
    if (depot_loose(d) < mag_pages || depot_clean(d) < keep + mag_pages) return false;
  } while (!shared->depot.compare_exchange_weak(d, d - mag_pages, std::memory_order_acquire,
                                                std::memory_order_relaxed));
  const uint32_t mag = pop_mag(shared->empty_head);
  uint32_t hint = 0;
  if (mag == kNil) {  // not expected (see Magazines): give the claim back
    shared->depot.fetch_add(mag_pages, std::memory_order_release);
    return false;
  }
  pop_claimed(slots_of(mag), mag_pages, &hint);
  give_full(mag);
  return true;
}

uint64_t PagePool::Impl::drain_dirty() {
  uint64_t total = 0;
  uint32_t batch[256];
  // Every cache's ring (the cache may be freeing into it right now: SPSC, see top).
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
  if (total > 0) bump_shared(shared->pages_zeroed, total);
  return total;
}

bool PagePool::Impl::worker_pass() {
  std::lock_guard lock(worker_mu);
  const uint64_t zeroed = drain_dirty();
  const uint64_t free = depot_clean(shared->depot.load(std::memory_order_relaxed));

  const bool now_below_min = free < cfg.min_pages;
  const bool now_below_low = free < cfg.low_pages;
  if (now_below_min && !below_min) bump_shared(shared->below_min_events);
  if (now_below_low && !below_low) bump_shared(shared->below_low_events);
  below_min = now_below_min;
  below_low = now_below_low;

  // Atomic allocations failed since the last pass: the depot ran dry between passes
  // (bursts faster than the worker's poll, or dirty pages not yet zeroed). The low
  // watermark did not protect the atomic path, so the pool gets another chunk.
  uint64_t failures = 0;
  for (uint32_t i = 0; i < cfg.max_caches; ++i) {
    failures += caches[i].fail_exhausted.load(std::memory_order_relaxed);
  }
  const bool starved = failures != atomic_failures_seen;
  atomic_failures_seen = failures;

  bool grew = false;
  if (starved && !now_below_low && add_chunk()) {
    bump_shared(shared->grow_on_failure);
    grew = true;
  }
  if (now_below_low) {
    while (depot_clean(shared->depot.load(std::memory_order_relaxed)) < cfg.high_pages) {
      if (!add_chunk()) {
        if (last_grow_error != Error::at_maximum) bump_shared(shared->grow_failures);
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

void PagePool::Impl::worker_loop() {
  for (;;) {
    const bool busy = worker_pass();
    std::unique_lock lock(wait_mu);
    if (stop) return;
    if (busy || grow_requested) {
      grow_requested = false;
      continue;
    }
    // The atomic path may not make system calls, so it cannot wake us: poll.
    worker_cv.wait_for(lock, cfg.worker_poll, [this] { return stop || grow_requested; });
    if (stop) return;
    grow_requested = false;
  }
}

void PagePool::run_worker_once() {
  (void)impl_->worker_pass();
}

// ===================== observation =====================

PoolStats PagePool::stats() const {
  const Impl& m = *impl_;
  const SharedHot& s = *m.shared;
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  PoolStats st;
  uint64_t cached = 0;
  uint64_t dirty_rings = 0;
  uint64_t frees = ld(s.frees_uncached);
  for (uint32_t i = 0; i < cfg_.max_caches; ++i) {
    const PageCache& c = m.caches[i];
    st.alloc_cache += ld(c.alloc_cache);
    st.alloc_depot += ld(c.alloc_depot);
    st.alloc_reserve += ld(c.alloc_reserve);
    st.fail_exhausted += ld(c.fail_exhausted);
    frees += ld(c.frees);
    st.cache_refills += ld(c.refills);
    st.cache_flushes += ld(c.flushes);
    cached +=
        c.count.load(std::memory_order_relaxed) + c.prev_count.load(std::memory_order_relaxed);
    dirty_rings += c.dirty_pending();
  }
  st.alloc_wait = ld(s.alloc_wait);
  st.alloc_waited = ld(s.alloc_waited);
  st.alloc_wait_began = ld(s.alloc_wait_began);
  st.fail_exhausted += ld(s.fail_exhausted_wait);
  st.fail_reserve_only = ld(s.fail_reserve_only);
  st.fail_timed_out = ld(s.fail_timed_out);
  st.frees = frees;
  st.transfers = ld(s.transfers);
  st.violation_double_free = ld(s.violation_double_free);
  st.violation_not_owner = ld(s.violation_not_owner);
  st.violation_stale = ld(s.violation_stale);
  st.violation_out_of_window = ld(s.violation_out_of_window);
  st.violation_foreign_pool = ld(s.violation_foreign_pool);
  st.violation_bad_handle = ld(s.violation_bad_handle);
  st.violation_bad_cache = ld(s.violation_bad_cache);
  st.pages_zeroed = ld(s.pages_zeroed);
  st.chunks_added = ld(s.chunks_added);
  st.chunks_removed = ld(s.chunks_removed);
  st.grow_failures = ld(s.grow_failures);
  st.unmap_failures = ld(s.unmap_failures);
  st.grow_on_failure = ld(s.grow_on_failure);
  st.below_low_events = ld(s.below_low_events);
  st.below_min_events = ld(s.below_min_events);
  st.chunks = ld(s.chunks);
  st.chunks_high_water = ld(s.chunks_high_water);
  st.total_pages = st.chunks * m.ppc;
  st.free_clean = m.depot_clean(ld(s.depot));
  st.free_dirty = ld(s.dirty_count) + dirty_rings;
  const uint64_t not_in_use = st.free_clean + st.free_dirty + cached;
  st.in_use = st.total_pages > not_in_use ? st.total_pages - not_in_use : 0;
  return st;
}

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
