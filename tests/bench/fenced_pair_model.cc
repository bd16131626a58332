// fenced_pair_model — what one fenced alloc+free pair of the page pool would cost with its
// fast paths inlined into the caller (the handle in registers, no calls), against the
// std::mutex free list of alloc_bench, timed the same way (lfence;rdtsc around each pair,
// the empty pair's median subtracted, mean of the samples up to the p99). docs/allocator.md,
// session 5, has the figures.
//
//   build/bench/fenced_pair_model
//
// The model repeats the loads, compares, stores and the CAS of PagePool::alloc_page's and
// free_page's fast paths (page_pool.cc) on its own arrays; the worker's part (the page back
// into the magazine, the descriptor back to free) is done untimed. Variants, one row each:
// as in the pool; freeing the page allocated one pair earlier; without the two per-cache
// counters; and the free's CAS replaced by a plain store (NOT a valid allocator: two racing
// frees would both win; it shows what the locked instruction costs).
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <vector>

#include "allocator/measure/tsc.h"

namespace {

using labyrinth::measure::rdtsc_ordered;
using labyrinth::measure::TscClock;

constexpr uint32_t kGenMask = (1u << 30) - 1;
constexpr uint64_t word_of(uint64_t state, uint32_t gen, uint32_t owner) {
  return (uint64_t{owner} << 32) | (uint64_t{gen & kGenMask} << 2) | state;
}

struct Meta {
  std::atomic<uint64_t> word{0};
  std::atomic<uint32_t> next{0};
  std::atomic<uint32_t> era{0};
};
struct Handle {
  uint64_t gpa;
  std::byte* host;
  uint64_t generation;
  uint32_t index;
  uint32_t pool_id;
};
struct alignas(64) Cache {
  uint32_t* slots;
  std::atomic<uint32_t> count;
  uint32_t pool_id;
  uint32_t ring_mask;
  std::atomic<uint32_t> dirty_tail;
  uint32_t* dirty;
  Meta* pm;
  std::byte* host_base;
  uint64_t window_gpa;
  uint32_t max_pages;
  std::atomic<uint64_t> alloc_cache;
  std::atomic<uint64_t> frees;
};

struct Variant {
  const char* name;
  bool free_previous;  // free the page of the previous pair, not the one just allocated
  bool counters;       // the per-cache counters the pool bumps
  bool cas;            // false: a plain store (not a valid allocator)
};

template <bool kCounters>
void bump(std::atomic<uint64_t>& c) {
  if constexpr (kCounters)
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

template <bool kCounters>
[[gnu::always_inline]] inline Handle alloc(Cache& c, uint32_t owner) {
  const uint32_t n = c.count.load(std::memory_order_relaxed);
  const uint32_t idx = c.slots[n - 1];  // the driver keeps the magazine from running dry
  c.count.store(n - 1, std::memory_order_relaxed);
  bump<kCounters>(c.alloc_cache);
  Meta& d = c.pm[idx];
  const uint32_t low =
      (static_cast<uint32_t>(d.word.load(std::memory_order_relaxed) >> 2) + 1) & kGenMask;
  uint32_t era = d.era.load(std::memory_order_relaxed);
  if (low == 0) [[unlikely]]
    d.era.store(++era, std::memory_order_relaxed);
  d.word.store(word_of(1, low, owner), std::memory_order_release);
  const uint64_t off = uint64_t{idx} * 4096;
  return Handle{c.window_gpa + off, c.host_base + off, (uint64_t{era} << 30) | low, idx, c.pool_id};
}

template <bool kCounters, bool kCas>
[[gnu::always_inline]] inline bool free_page(Cache& c, const Handle& p, uint32_t owner) {
  const uint64_t off = uint64_t{p.index} * 4096;
  if (p.pool_id != c.pool_id || p.index >= c.max_pages || p.generation >= (1ull << 62) ||
      p.gpa != c.window_gpa + off || p.host != c.host_base + off) {
    return false;
  }
  Meta& d = c.pm[p.index];
  const uint32_t t = c.dirty_tail.load(std::memory_order_relaxed);
  const uint32_t low = static_cast<uint32_t>(p.generation) & kGenMask;
  uint64_t w = d.word.load(std::memory_order_acquire);
  if (w != word_of(1, low, owner) ||
      d.era.load(std::memory_order_relaxed) != static_cast<uint32_t>(p.generation >> 30)) {
    return false;
  }
  if constexpr (kCas) {
    if (!d.word.compare_exchange_strong(w, word_of(2, low, 0), std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      return false;
    }
  } else {
    d.word.store(word_of(2, low, 0), std::memory_order_relaxed);
  }
  c.dirty[t & c.ring_mask] = p.index;
  c.dirty_tail.store(t + 1, std::memory_order_release);
  bump<kCounters>(c.frees);
  return true;
}

struct MutexFreeList {
  std::mutex mu;
  std::vector<std::byte*> free;
  std::byte* pop() {
    std::lock_guard lock(mu);
    std::byte* p = free.back();
    free.pop_back();
    return p;
  }
  void push(std::byte* p) {
    std::lock_guard lock(mu);
    free.push_back(p);
  }
};

uint64_t timer_overhead() {
  std::vector<uint64_t> v(200000);
  for (auto& x : v) {
    const uint64_t t0 = rdtsc_ordered();
    x = rdtsc_ordered() - t0;
  }
  std::ranges::sort(v);
  return v[v.size() / 2];
}

// Mean of the samples up to the p99, net of the timer, in ns.
double mean99(std::vector<uint64_t>& v, uint64_t overhead) {
  std::ranges::sort(v);
  const size_t n = v.size() * 99 / 100;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(v[i] > overhead ? v[i] - overhead : 0);
  return TscClock::instance().to_ns(1) * sum / static_cast<double>(n);
}

template <bool kCounters, bool kCas>
void run(const Variant& var, uint64_t overhead) {
  constexpr uint32_t kPages = 2048;
  constexpr uint32_t kOwner = 1;
  std::vector<Meta> pm(kPages);
  std::vector<uint32_t> magazine(kPages);
  std::vector<uint32_t> ring(4096);
  std::vector<std::byte> arena(64 * 4096);
  Cache c{};
  c.slots = magazine.data();
  c.pool_id = 7;
  c.ring_mask = 4095;
  c.dirty = ring.data();
  c.pm = pm.data();
  c.host_base = arena.data();
  c.window_gpa = 4ull << 30;
  c.max_pages = kPages;
  for (uint32_t i = 0; i < 32; ++i) magazine[i] = i;
  c.count.store(32);
  MutexFreeList list;
  for (size_t i = 0; i < 64; ++i) list.free.push_back(arena.data() + i * 4096);

  constexpr int kPairs = 1'000'000;
  std::vector<uint64_t> pool_ticks, mutex_ticks;
  pool_ticks.reserve(kPairs);
  mutex_ticks.reserve(kPairs);
  Handle prev = alloc<kCounters>(c, kOwner);
  for (int i = 0; i < kPairs; ++i) {
    const uint64_t t0 = rdtsc_ordered();
    const Handle page = alloc<kCounters>(c, kOwner);
    const bool ok = free_page<kCounters, kCas>(c, var.free_previous ? prev : page, kOwner);
    const uint64_t t1 = rdtsc_ordered();
    if (!ok) {
      std::printf("%s: a free was refused\n", var.name);
      return;
    }
    pool_ticks.push_back(t1 - t0);
    // Untimed, the worker's part: the freed page back into the magazine, clean.
    const Handle& freed = var.free_previous ? prev : page;
    const uint32_t n = c.count.load(std::memory_order_relaxed);
    c.slots[n] = freed.index;
    c.count.store(n + 1, std::memory_order_relaxed);
    pm[freed.index].word.store(word_of(0, static_cast<uint32_t>(freed.generation), 0),
                               std::memory_order_relaxed);
    if (var.free_previous) prev = page;

    const uint64_t t2 = rdtsc_ordered();
    std::byte* p = list.pop();
    list.push(p);
    const uint64_t t3 = rdtsc_ordered();
    mutex_ticks.push_back(t3 - t2);
  }
  std::printf("%-44s pool model %6.2f ns   std::mutex list %6.2f ns\n", var.name,
              mean99(pool_ticks, overhead), mean99(mutex_ticks, overhead));
}

}  // namespace

int main() {
  const uint64_t overhead = timer_overhead();
  std::printf("fenced alloc+free pair, mean of the samples up to the p99 (timer %.1f ns)\n",
              TscClock::instance().to_ns(overhead));
  for (int round = 0; round < 5; ++round) {
    run<true, true>({"inlined fast paths", false, true, true}, overhead);
    run<true, true>({"... freeing the previous pair's page", true, true, true}, overhead);
    run<false, true>({"... without the per-cache counters", false, false, true}, overhead);
    run<true, false>({"... CAS replaced by a store (not valid)", false, true, false}, overhead);
  }
  return 0;
}
