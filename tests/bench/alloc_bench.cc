// alloc_bench — the page pool's atomic path against the designs it replaces.
//
//   build/bench/alloc_bench                       # everything, console table
//   build/bench/alloc_bench --benchmark_filter=1T # one-thread comparisons only
//
// Every benchmark times each operation (alloc + free pair) with a fenced rdtsc pair,
// subtracts the median cost of an empty rdtsc pair measured in the same process, and
// records it in the allocator's log-linear histogram. Counters: ns_op (mean), mean99 (mean
// of the samples up to the p99: without the preemptions), p50, p99, p999, max (ns), timer
// (the subtracted rdtsc overhead, ns). One-thread rows: time
// per iteration is the sum of the timed operations only (manual time): work that the
// design under test does off the measured path (our worker's zeroing) is excluded and
// said so. Two-thread rows: time is WALL CLOCK from the first allocation to the last
// free, so items_per_second is the pair throughput of the whole system.
//
// Needs no KVM: pools sit on a HostOnlySink (the same pinned memory and atomic path; only
// the memslot calls at chunk add/remove are absent). Only BM_1T_MemslotPerPage, the
// naive design with a KVM memslot per page, needs /dev/kvm and says so without it.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "allocator/measure/histogram.h"
#include "allocator/measure/tsc.h"
#include "allocator/memslot_sink.h"
#include "allocator/page_pool.h"

namespace {

using namespace labyrinth::alloc;
using namespace labyrinth::measure;

constexpr OwnerId kOwner = 1;
constexpr size_t kBatch = 1024;  // timed operations per benchmark iteration

uint64_t timer_overhead_ticks() {
  static const uint64_t overhead = [] {
    Histogram h;
    for (int i = 0; i < 200000; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      const uint64_t t1 = rdtsc_ordered();
      h.record(t1 - t0);
    }
    return h.percentile(50);
  }();
  return overhead;
}

// Mean of the samples at or below `limit` (bucket midpoints; exact below 128 ticks): on a
// shared machine the plain mean is a few preemptions (ms each) spread over the samples,
// this one is the operation's own cost.
double mean_up_to(const Histogram& h, uint64_t limit) {
  double sum = 0;
  uint64_t n = 0;
  for (size_t b = 0; b < Histogram::kBuckets && Histogram::bucket_low(b) <= limit; ++b) {
    const double mid = static_cast<double>(Histogram::bucket_low(b)) +
                       static_cast<double>(Histogram::bucket_width(b) - 1) / 2;
    sum += static_cast<double>(h.bucket_count(b)) * mid;
    n += h.bucket_count(b);
  }
  return n != 0 ? sum / static_cast<double>(n) : 0;
}

// Collects per-operation latencies and publishes them as benchmark counters.
struct Latency {
  Histogram hist;
  uint64_t overhead = timer_overhead_ticks();
  uint64_t total_ticks = 0;
  void add(uint64_t ticks) {
    const uint64_t net = ticks > overhead ? ticks - overhead : 0;
    hist.record(net);
    total_ticks += net;
  }
  void publish(benchmark::State& state, const char* prefix = "") const {
    const TscClock& clk = TscClock::instance();
    auto ns = [&](uint64_t t) { return clk.to_ns(t); };
    const std::string p(prefix);
    state.counters[p + "ns_op"] =
        hist.count() ? ns(total_ticks) / static_cast<double>(hist.count()) : 0;
    state.counters[p + "p50"] = ns(hist.percentile(50));
    state.counters[p + "p99"] = ns(hist.percentile(99));
    state.counters[p + "p999"] = ns(hist.percentile(99.9));
    state.counters[p + "max"] = ns(hist.max());
    state.counters[p + "mean99"] = mean_up_to(hist, hist.percentile(99)) / clk.ticks_per_ns();
    if (prefix[0] == '\0') state.counters["timer"] = ns(overhead);
  }
};

// A VM fd for the memslot-per-page comparison only.
struct Vm {
  int kvm = -1, vm = -1;
  Vm() {
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm >= 0) vm = ioctl(kvm, KVM_CREATE_VM, 0);
  }
  ~Vm() {
    if (vm >= 0) close(vm);
    if (kvm >= 0) close(kvm);
  }
};
Vm& shared_vm() {
  static Vm vm;
  return vm;
}

struct Pool {
  std::unique_ptr<HostOnlySink> sink;
  std::unique_ptr<PagePool> pool;
  static Pool make(ZeroPolicy zp, bool worker, uint32_t slot_base, uint32_t cache_capacity = 64) {
    Pool p;
    p.sink = std::make_unique<HostOnlySink>();
    PoolConfig cfg;
    cfg.window_gpa = (4ull + slot_base) << 30;  // each pool its own window
    cfg.window_size = 1ull << 30;
    cfg.initial_chunks = 4;  // 8 MiB, 2048 pages
    cfg.max_chunks = 8;
    cfg.zero_policy = zp;
    cfg.start_worker = worker;
    cfg.shrink = false;
    cfg.cache_capacity = cache_capacity;
    auto r = PagePool::create(cfg, *p.sink);
    if (r) p.pool = std::move(*r);
    return p;
  }
};

uint32_t g_slot_base = 1;

// ---- ours, one thread ----
void BM_1T_Pool(benchmark::State& state, ZeroPolicy zp) {
  Pool p = Pool::make(zp, /*worker=*/false, g_slot_base);
  g_slot_base += 16;
  if (!p.pool) {
    state.SkipWithError("pool creation failed");
    return;
  }
  PagePool& pool = *p.pool;
  PageCache* cache = pool.attach_cache().value();  // fresh pool: free slots
  Latency lat;
  for (auto _ : state) {
    uint64_t iter_ticks = 0;
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      auto page = pool.alloc_page(kGfpAtomicExclusive, kOwner, cache);
      if (page) (void)pool.free_page(*page, kOwner, cache);
      const uint64_t t1 = rdtsc_ordered();
      benchmark::DoNotOptimize(page);
      if (!page) {
        state.SkipWithError("pool exhausted during the benchmark");
        return;
      }
      lat.add(t1 - t0);
      iter_ticks += t1 - t0;
    }
    // Off the measured path: the worker's job (zero the freed pages, refill the depot).
    pool.run_worker_once();
    state.SetIterationTime(TscClock::instance().to_ns(iter_ticks) * 1e-9);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  lat.publish(state);
  pool.detach_cache(cache);
}
BENCHMARK_CAPTURE(BM_1T_Pool, atomic_alloc_free_worker_zeroing, ZeroPolicy::worker)
    ->UseManualTime();
BENCHMARK_CAPTURE(BM_1T_Pool, atomic_alloc_free_zero_on_free, ZeroPolicy::on_free)->UseManualTime();

// The same pair with alloc and free fenced and timed apart (alloc_* and free_* counters):
// where a fenced pair's time goes.
void BM_1T_Pool_SplitPair(benchmark::State& state) {
  Pool p = Pool::make(ZeroPolicy::worker, /*worker=*/false, g_slot_base);
  g_slot_base += 16;
  PagePool& pool = *p.pool;
  PageCache* cache = pool.attach_cache().value();  // fresh pool: free slots
  Latency alloc_lat, free_lat;
  for (auto _ : state) {
    uint64_t iter_ticks = 0;
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      auto page = pool.alloc_page(kGfpAtomicExclusive, kOwner, cache);
      const uint64_t t1 = rdtsc_ordered();
      benchmark::DoNotOptimize(page);
      if (!page) {
        state.SkipWithError("pool exhausted during the benchmark");
        return;
      }
      const uint64_t t2 = rdtsc_ordered();
      (void)pool.free_page(*page, kOwner, cache);
      const uint64_t t3 = rdtsc_ordered();
      alloc_lat.add(t1 - t0);
      free_lat.add(t3 - t2);
      iter_ticks += t1 - t0 + t3 - t2;
    }
    pool.run_worker_once();  // off the measured path, as in BM_1T_Pool
    state.SetIterationTime(TscClock::instance().to_ns(iter_ticks) * 1e-9);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  alloc_lat.publish(state, "alloc_");
  free_lat.publish(state, "free_");
  pool.detach_cache(cache);
}
BENCHMARK(BM_1T_Pool_SplitPair)->UseManualTime();

// Per-pair percentiles of timed runs of 32, for any one-thread design:
// body() does 32 alloc+free pairs.
template <typename Body>
void time_runs_of_32(benchmark::State& state, Body body, PagePool* pool = nullptr) {
  Histogram per_pair_x100;  // hundredths of a tick
  const uint64_t overhead = timer_overhead_ticks();
  uint64_t total = 0, pairs = 0;
  for (auto _ : state) {
    uint64_t iter_ticks = 0;
    for (size_t run = 0; run < kBatch / 32; ++run) {
      const uint64_t t0 = rdtsc_ordered();
      body();
      const uint64_t t1 = rdtsc_ordered();
      const uint64_t net = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
      per_pair_x100.record(net * 100 / 32);
      iter_ticks += net;
      total += net;
      pairs += 32;
    }
    if (pool != nullptr) pool->run_worker_once();  // off the measured path
    state.SetIterationTime(TscClock::instance().to_ns(iter_ticks) * 1e-9);
  }
  const TscClock& clk = TscClock::instance();
  auto ns = [&](double pct) { return clk.to_ns(per_pair_x100.percentile(pct)) / 100.0; };
  state.counters["ns_op"] = clk.to_ns(total) / static_cast<double>(pairs);
  state.counters["p50"] = ns(50);
  state.counters["p99"] = ns(99);
  state.counters["p999"] = ns(99.9);
  state.counters["max"] = clk.to_ns(per_pair_x100.max()) / 100.0;
  state.SetItemsProcessed(static_cast<int64_t>(pairs));
}

// The TSC here advances in steps of 26 ticks (10 ns) under nested virtualization, so a
// single alloc+free pair is below the timer's resolution. This variant times runs of
// 32 consecutive pairs and records the per-pair mean of each run: its percentiles are
// those of 32-op means (resolution 0.3 ns), the honest way to state a median here.
void BM_1T_Pool_Batched32(benchmark::State& state) {
  Pool p = Pool::make(ZeroPolicy::worker, /*worker=*/false, g_slot_base);
  g_slot_base += 16;
  PagePool& pool = *p.pool;
  PageCache* cache = pool.attach_cache().value();  // fresh pool: free slots
  time_runs_of_32(
      state,
      [&] {
        for (int i = 0; i < 32; ++i) {
          auto page = pool.alloc_page(kGfpAtomicExclusive, kOwner, cache);
          benchmark::DoNotOptimize(page);
          if (page) (void)pool.free_page(*page, kOwner, cache);
        }
      },
      &pool);
  pool.detach_cache(cache);
}
BENCHMARK(BM_1T_Pool_Batched32)->UseManualTime();

// The batch API: alloc_pages(32) then free_pages(32), the same checks per page (one CAS
// per free), the flag/owner/cache checks and the ring publication once per batch.
void BM_1T_Pool_Bulk32(benchmark::State& state) {
  Pool p = Pool::make(ZeroPolicy::worker, /*worker=*/false, g_slot_base);
  g_slot_base += 16;
  PagePool& pool = *p.pool;
  PageCache* cache = pool.attach_cache().value();  // fresh pool: free slots
  Page pages[32];
  bool ok = true;
  time_runs_of_32(
      state,
      [&] {
        ok &= pool.alloc_pages(kGfpAtomicExclusive, kOwner, cache, pages, 32).value_or(0) == 32;
        benchmark::DoNotOptimize(pages);
        ok &= pool.free_pages(pages, 32, kOwner, cache) == 32;
      },
      &pool);
  if (!ok) state.SkipWithError("pool exhausted during the benchmark");
  pool.detach_cache(cache);
}
BENCHMARK(BM_1T_Pool_Bulk32)->UseManualTime();

// Cold: what one atomic allocation costs when the allocator's metadata is not in the
// CPU caches, as on a NIC interrupt path at low packet rates. Before each timed alloc
// the benchmark streams through 32 MiB (evicting L1/L2/L3 and most of the TLB).
void BM_1T_Pool_ColdAlloc(benchmark::State& state) {
  Pool p = Pool::make(ZeroPolicy::on_free, /*worker=*/false, g_slot_base);
  g_slot_base += 16;
  PagePool& pool = *p.pool;
  PageCache* cache = pool.attach_cache().value();  // fresh pool: free slots
  std::vector<uint64_t> evict((32u << 20) / sizeof(uint64_t), 1);
  Latency lat;
  uint64_t sink = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < evict.size(); i += 8) sink += evict[i]++;
    const uint64_t t0 = rdtsc_ordered();
    auto page = pool.alloc_page(kGfpAtomicExclusive, kOwner, cache);
    const uint64_t t1 = rdtsc_ordered();
    benchmark::DoNotOptimize(page);
    if (!page) {
      state.SkipWithError("pool exhausted");
      return;
    }
    lat.add(t1 - t0);
    (void)pool.free_page(*page, kOwner, cache);
    state.SetIterationTime(TscClock::instance().to_ns(t1 - t0) * 1e-9);
  }
  benchmark::DoNotOptimize(sink);
  lat.publish(state);
  pool.detach_cache(cache);
}
BENCHMARK(BM_1T_Pool_ColdAlloc)->UseManualTime()->Iterations(2000);

// ---- the worker's zeroing cost per page (what ZeroPolicy::worker moves off the path) ----
void BM_1T_ZeroPage(benchmark::State& state) {
  std::vector<std::byte> buf(2 << 20);
  Latency lat;
  size_t off = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      std::memset(buf.data() + off, 0, kPageSize);
      const uint64_t t1 = rdtsc_ordered();
      benchmark::ClobberMemory();
      lat.add(t1 - t0);
      off = (off + kPageSize) % buf.size();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  lat.publish(state);
}
BENCHMARK(BM_1T_ZeroPage);

// ---- naive designs, one thread ----
struct MutexFreeList {
  std::mutex mu;
  std::vector<std::byte*> free;
  std::byte* pop() {
    std::lock_guard lock(mu);
    if (free.empty()) return nullptr;
    std::byte* p = free.back();
    free.pop_back();
    return p;
  }
  void push(std::byte* p) {
    std::lock_guard lock(mu);
    free.push_back(p);
  }
};

std::vector<std::byte> g_arena;  // backing for the mutex free list
void fill_list(MutexFreeList& l, size_t pages) {
  g_arena.assign(pages * kPageSize, std::byte{0});
  for (size_t i = 0; i < pages; ++i) l.free.push_back(g_arena.data() + i * kPageSize);
}

void BM_1T_MutexFreeList(benchmark::State& state) {
  MutexFreeList list;
  fill_list(list, 2048);
  Latency lat;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      std::byte* p = list.pop();
      list.push(p);
      const uint64_t t1 = rdtsc_ordered();
      benchmark::DoNotOptimize(p);
      lat.add(t1 - t0);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  lat.publish(state);
}
BENCHMARK(BM_1T_MutexFreeList);

// The same list timed like BM_1T_Pool_Batched32 (runs of 32 single pairs): the p50 to
// compare with the pool's at 0.3 ns resolution.
void BM_1T_MutexFreeList_Batched32(benchmark::State& state) {
  MutexFreeList list;
  fill_list(list, 2048);
  time_runs_of_32(state, [&] {
    for (int i = 0; i < 32; ++i) {
      std::byte* p = list.pop();
      benchmark::DoNotOptimize(p);
      list.push(p);
    }
  });
}
BENCHMARK(BM_1T_MutexFreeList_Batched32)->UseManualTime();

// ... and in bulk: 32 pops under one lock, 32 pushes under one lock (the mutex list's
// answer to alloc_pages/free_pages).
void BM_1T_MutexFreeList_Bulk32(benchmark::State& state) {
  MutexFreeList list;
  fill_list(list, 2048);
  std::byte* pages[32];
  time_runs_of_32(state, [&] {
    {
      std::lock_guard lock(list.mu);
      for (auto& p : pages) {
        p = list.free.back();
        list.free.pop_back();
      }
    }
    benchmark::DoNotOptimize(pages);
    std::lock_guard lock(list.mu);
    for (auto* p : pages) list.free.push_back(p);
  });
}
BENCHMARK(BM_1T_MutexFreeList_Bulk32)->UseManualTime();

void BM_1T_AlignedAllocMemsetFree(benchmark::State& state) {
  Latency lat;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t t0 = rdtsc_ordered();
      void* p = std::aligned_alloc(kPageSize, kPageSize);
      std::memset(p, 0, kPageSize);
      benchmark::DoNotOptimize(p);
      std::free(p);
      const uint64_t t1 = rdtsc_ordered();
      lat.add(t1 - t0);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  lat.publish(state);
}
BENCHMARK(BM_1T_AlignedAllocMemsetFree);

void BM_1T_MmapMlockMunmap(benchmark::State& state) {
  Latency lat;
  for (auto _ : state) {
    const uint64_t t0 = rdtsc_ordered();
    void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED || mlock(p, kPageSize) != 0) {
      state.SkipWithError("mmap/mlock failed");
      return;
    }
    munmap(p, kPageSize);
    const uint64_t t1 = rdtsc_ordered();
    lat.add(t1 - t0);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  lat.publish(state);
}
BENCHMARK(BM_1T_MmapMlockMunmap);

// The naive design this allocator replaces: every page its own KVM memslot.
void BM_1T_MemslotPerPage(benchmark::State& state) {
  if (shared_vm().vm < 0) {
    state.SkipWithError("/dev/kvm is not available (this one row compares with KVM memslots)");
    return;
  }
  Latency lat;
  uint64_t gpa = 64ull << 30;
  for (auto _ : state) {
    const uint64_t t0 = rdtsc_ordered();
    void* p = mmap(nullptr, kPageSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    (void)mlock(p, kPageSize);
    kvm_userspace_memory_region r{500, 0, gpa, kPageSize, reinterpret_cast<uint64_t>(p)};
    const bool ok = ioctl(shared_vm().vm, KVM_SET_USER_MEMORY_REGION, &r) == 0;
    r.memory_size = 0;
    (void)ioctl(shared_vm().vm, KVM_SET_USER_MEMORY_REGION, &r);
    munmap(p, kPageSize);
    const uint64_t t1 = rdtsc_ordered();
    if (!ok) {
      state.SkipWithError("KVM_SET_USER_MEMORY_REGION failed");
      return;
    }
    lat.add(t1 - t0);
    gpa += kPageSize;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  lat.publish(state);
}
BENCHMARK(BM_1T_MemslotPerPage)->Iterations(300);

// ---- two threads: A allocates, B frees what A allocated (cross-thread frees) ----
// A hands each page to B through a single-producer/single-consumer ring. Both sides
// zero on free (B's cost), so the pool (ZeroPolicy::on_free) and the mutex list do
// the same work. Reported: A's alloc latency (alloc_*) and B's free latency (free_*).
class Ring {
 public:
  bool push(std::byte* p, uint32_t idx, uint64_t gen) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == kSize) return false;
    slots_[t % kSize] = Slot{p, gen, idx};
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(std::byte** p, uint32_t* idx, uint64_t* gen) {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    *p = slots_[h % kSize].p;
    *idx = slots_[h % kSize].idx;
    *gen = slots_[h % kSize].gen;
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  static constexpr uint64_t kSize = 512;
  struct Slot {
    std::byte* p;
    uint64_t gen;
    uint32_t idx;
  };
  std::array<Slot, kSize> slots_{};
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

constexpr uint64_t k2TOps = 2'000'000;

template <typename AllocFn, typename FreeFn>
void run_two_threads(benchmark::State& state, AllocFn alloc, FreeFn free_fn) {
  for (auto _ : state) {
    Ring ring;
    Latency a_lat, b_lat;
    std::atomic<bool> done{false};
    uint64_t failures = 0;
    std::thread consumer([&] {
      std::byte* p;
      uint32_t idx;
      uint64_t gen;
      for (;;) {
        if (ring.pop(&p, &idx, &gen)) {
          const uint64_t t0 = rdtsc_ordered();
          free_fn(p, idx, gen);
          b_lat.add(rdtsc_ordered() - t0);
        } else if (done.load(std::memory_order_acquire)) {
          if (!ring.pop(&p, &idx, &gen)) break;
          free_fn(p, idx, gen);
        }
      }
    });
    const auto wall0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < k2TOps; ++i) {
      std::byte* p = nullptr;
      uint32_t idx = 0;
      uint64_t gen = 0;
      const uint64_t t0 = rdtsc_ordered();
      const bool ok = alloc(&p, &idx, &gen);
      const uint64_t t1 = rdtsc_ordered();
      if (!ok) {
        ++failures;
        continue;
      }
      a_lat.add(t1 - t0);
      while (!ring.push(p, idx, gen)) {
      }
    }
    done.store(true, std::memory_order_release);
    consumer.join();
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - wall0;
    state.SetIterationTime(wall.count());  // wall clock: items_per_second = pairs/s
    state.counters["wall_Mpairs_s"] = static_cast<double>(k2TOps - failures) / wall.count() / 1e6;
    a_lat.publish(state, "alloc_");
    b_lat.publish(state, "free_");
    state.counters["alloc_failures"] = static_cast<double>(failures);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * k2TOps));
}

// The pool under the two-thread harness: A allocates through one cache, B frees through
// another. Arg: per-context cache capacity.
void run_pool_two_threads(benchmark::State& state, ZeroPolicy zero) {
  Pool p = Pool::make(zero, /*worker=*/true, g_slot_base, static_cast<uint32_t>(state.range(0)));
  g_slot_base += 16;
  PagePool& pool = *p.pool;
  PageCache* ca = pool.attach_cache().value();  // fresh pool: free slots
  PageCache* cb = pool.attach_cache().value();
  run_two_threads(
      state,
      [&](std::byte** out, uint32_t* idx, uint64_t* gen) {
        auto page = pool.alloc_page(kGfpAtomicExclusive, kOwner, ca);
        if (!page) return false;
        *out = page->host;
        *idx = page->index;
        *gen = page->generation;
        return true;
      },
      [&](std::byte* host, uint32_t idx, uint64_t gen) {
        const Page page{pool.config().window_gpa + uint64_t{idx} * kPageSize, host, gen, idx,
                        pool.id()};
        (void)pool.free_page(page, kOwner, cb);
      });
  pool.detach_cache(ca);
  pool.detach_cache(cb);
}

// The cache refills and flushes half its capacity at a time, so 1 in capacity/2
// allocations takes the depot path: with 64 that is 3% (the p99 is a refill), with 256
// 0.8% (Linux's page_pool refills 64 of 128: 1.6%). B zeroes each page as it frees it.
void BM_2T_Pool_CrossThreadFree(benchmark::State& state) {
  run_pool_two_threads(state, ZeroPolicy::on_free);
}
BENCHMARK(BM_2T_Pool_CrossThreadFree)->Arg(64)->Arg(256)->UseManualTime()->Iterations(3);

// The same pool with the library's default, ZeroPolicy::worker: B's free queues the page
// in its cache's dirty ring and the pool's worker thread zeroes it before it returns to the
// depot (the same work: no page reaches a new owner unzeroed). Three busy threads on
// however many cores there are; A's failed allocations (the worker behind) are counted
// in alloc_failures and are not pairs.
void BM_2T_Pool_CrossThreadFree_WorkerZeroing(benchmark::State& state) {
  run_pool_two_threads(state, ZeroPolicy::worker);
}
BENCHMARK(BM_2T_Pool_CrossThreadFree_WorkerZeroing)->Arg(64)->UseManualTime()->Iterations(3);

// The bound of every design that zeroes on B's side: no allocator at all. A hands out the
// next of 2048 pages round robin, B zeroes it; the harness (ring, timing) and the memset
// are all that is left.
void BM_2T_Bound_ZeroInB(benchmark::State& state) {
  std::vector<std::byte> arena(2048 * kPageSize);
  size_t next = 0;
  run_two_threads(
      state,
      [&](std::byte** out, uint32_t*, uint64_t*) {
        *out = arena.data() + next * kPageSize;
        next = (next + 1) % 2048;
        return true;
      },
      [&](std::byte* p, uint32_t, uint64_t) { std::memset(p, 0, kPageSize); });
}
BENCHMARK(BM_2T_Bound_ZeroInB)->UseManualTime()->Iterations(3);

void BM_2T_MutexFreeList_CrossThreadFree(benchmark::State& state) {
  MutexFreeList list;
  fill_list(list, 2048);
  run_two_threads(
      state,
      [&](std::byte** out, uint32_t*, uint64_t*) {
        *out = list.pop();
        return *out != nullptr;
      },
      [&](std::byte* p, uint32_t, uint64_t) {
        std::memset(p, 0, kPageSize);  // same contract: the next owner gets a zeroed page
        list.push(p);
      });
}
BENCHMARK(BM_2T_MutexFreeList_CrossThreadFree)->UseManualTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
