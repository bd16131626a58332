// allocator/pool_layout.h — the page pool's shared records and the words inside them.
//
// Internal to the pool: its .cc files and page_pool_impl.h include it, nothing else does.
// The per-page descriptor, the per-context cache, the per-chunk stack head and the shared
// depot and counters, all placed once at create() in pinned memory, and the bit layouts
// of their atomic words. The concurrency design over them:
//
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
//
// Chunk retirement (worker only): first turn full magazines back into loose pages, one
//   at a time while the depot stays above the high watermark plus a chunk (so at most
//   M pages are ever invisible, and only while plenty of others are not). Then claim a
//   whole chunk's worth of loose pages, set the frozen
//   bit on the chunk's head (pops and pushes fail on a frozen head; a push that fails
//   diverts its pages to the dirty list), then count the frozen stack: if it holds every
//   page of the chunk, no page of it is anywhere else and the chunk can be unmapped;
//   otherwise unfreeze and return the claim. Because the worker claimed >= what the
//   frozen stack holds, every other outstanding claim is still covered by unfrozen stacks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "allocator/measure/counter.h"
#include "allocator/page_pool.h"

namespace labyrinth::alloc {

// ---- descriptor word ----
enum : uint64_t { kFree = 0, kAllocated = 1, kDirty = 2, kOffline = 3 };
inline constexpr uint32_t kGenMask = (1u << 30) - 1;
inline constexpr unsigned kGenLowBits = 30;
inline constexpr uint64_t kGenLimit = 1ull << kGenerationBits;
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
inline constexpr uint32_t kNil = 0xFFFFFFFFu;
inline constexpr uint64_t kFrozen = 1ull << 63;
inline constexpr uint64_t kTagMask = (1ull << 31) - 1;
constexpr uint32_t head_top(uint64_t h) {
  return static_cast<uint32_t>(h);
}
constexpr uint64_t head_tag(uint64_t h) {
  return (h >> 32) & kTagMask;
}
constexpr uint64_t make_head(uint32_t top, uint64_t tag, bool frozen) {
  return (frozen ? kFrozen : 0) | (((tag)&kTagMask) << 32) | top;
}

enum ChunkState : uint32_t {
  kChunkEmpty = 0,
  kChunkActive = 1,
  kChunkZombie = 2,  // retired but KVM refused to drop its memslot: pinned forever, unused
};

// Per-page metadata (see Descriptor above).
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
  measure::Counter alloc_cache;
  measure::Counter frees;
  measure::Counter alloc_depot;
  measure::Counter alloc_reserve;
  measure::Counter fail_exhausted;
  measure::Counter refills;
  measure::Counter flushes;
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
  alignas(64) measure::Counter transfers;
  measure::Counter frees_uncached;
  measure::Counter violation_double_free;
  measure::Counter violation_not_owner;
  measure::Counter violation_stale;
  measure::Counter violation_out_of_window;
  measure::Counter violation_foreign_pool;
  measure::Counter violation_bad_handle;
  measure::Counter violation_bad_cache;
  measure::Counter alloc_wait;
  measure::Counter alloc_waited;
  measure::Counter alloc_wait_began;
  measure::Counter fail_reserve_only;
  measure::Counter fail_timed_out;
  measure::Counter fail_exhausted_wait;
  measure::Counter pages_zeroed;
  measure::Counter chunks_added;
  measure::Counter chunks_removed;
  measure::Counter grow_failures;
  measure::Counter unmap_failures;
  measure::Counter grow_on_failure;
  measure::Counter below_low_events;
  measure::Counter below_min_events;
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> chunks_high_water{0};
  std::atomic<uint32_t> chunk_limit{0};  // slots [0, limit) may hold chunks
};

}  // namespace labyrinth::alloc
