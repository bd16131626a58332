// Concurrency stress: two threads, >= 10 million mixed alloc / transfer / free
// operations with cross-thread frees, the real background worker zeroing and growing
// concurrently. Afterwards every page is accounted for exactly once (PagePool::audit)
// and the counters agree with what the threads did.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "allocator/page_pool.h"

namespace labyrinth::alloc {
namespace {

#ifdef LABYRINTH_SANITIZER
constexpr uint64_t kOpsPerThread = 1'000'000;  // sanitizers run ~10-50x slower
#else
constexpr uint64_t kOpsPerThread = 5'000'000;  // x2 threads = 10 million
#endif

// Single-producer single-consumer ring for handing pages to the other thread.
// Producer writes slot then publishes tail (release); consumer reads tail (acquire).
class HandoffRing {
 public:
  bool push(const Page& p) {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_.load(std::memory_order_acquire) == slots_.size()) return false;
    slots_[t % slots_.size()] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  bool pop(Page* p) {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_.load(std::memory_order_acquire)) return false;
    *p = slots_[h % slots_.size()];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }

 private:
  std::array<Page, 256> slots_{};
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

struct ThreadResult {
  uint64_t ops = 0, allocs = 0, frees = 0, transfers = 0, exhausted = 0, errors = 0;
};

void run_stress(ZeroPolicy policy) {
  HostOnlySink sink;
  PoolConfig cfg;
  cfg.window_gpa = 4ull << 30;
  cfg.window_size = 1ull << 30;
  cfg.initial_chunks = 1;
  cfg.max_chunks = 4;  // 2048 pages at most
  cfg.min_pages = 32;
  cfg.low_pages = 128;
  cfg.high_pages = 512;
  cfg.zero_policy = policy;
  cfg.worker_poll = std::chrono::microseconds(100);
  auto created = PagePool::create(cfg, sink);
  ASSERT_TRUE(created) << to_string(created.error());
  PagePool& pool = **created;

  HandoffRing to_b, to_a;
  std::array<ThreadResult, 2> res{};
  std::atomic<int> finished{0};

  auto body = [&](int me) {
    const OwnerId self = me == 0 ? 100 : 200;
    const OwnerId peer = me == 0 ? 200 : 100;
    HandoffRing& out = me == 0 ? to_b : to_a;
    HandoffRing& in = me == 0 ? to_a : to_b;
    PageCache* cache = pool.attach_cache().value();  // 16 slots, 2 used
    ThreadResult& r = res[me];
    std::mt19937_64 rng(me + 1);
    std::vector<Page> mine;
    mine.reserve(512);
    while (r.ops < kOpsPerThread) {
      const unsigned dice = rng() % 8;
      Page p;
      if (dice < 3 || mine.empty()) {  // allocate
        auto a = pool.alloc_page(kGfpAtomicExclusive, self, cache);
        ++r.ops;
        if (!a) {
          if (a.error() == Error::exhausted) {
            ++r.exhausted;
            std::this_thread::yield();  // like a NIC's next frame: later (lets the worker run)
          } else {
            ++r.errors;
          }
        } else {
          ++r.allocs;
          if (a->host[0] != std::byte{0}) ++r.errors;  // must be zeroed
          a->host[0] = std::byte{0x5A};
          if (mine.size() < 512)
            mine.push_back(*a);
          else if (pool.free_page(*a, self, cache))
            ++r.frees;
          else
            ++r.errors;
        }
      } else if (dice < 5) {  // free locally
        p = mine.back();
        mine.pop_back();
        if (pool.free_page(p, self, cache))
          ++r.frees;
        else
          ++r.errors;
        ++r.ops;
      } else if (dice < 7) {  // hand to the other thread (transfer, then ring)
        p = mine.back();
        auto t = pool.transfer(p, self, peer);
        ++r.ops;
        if (!t) {
          ++r.errors;
          continue;
        }
        ++r.transfers;
        mine.pop_back();
        while (!out.push(*t)) {  // ring full: the peer frees, we keep draining ours
          Page q;
          if (in.pop(&q)) {
            if (pool.free_page(q, self, cache))
              ++r.frees;
            else
              ++r.errors;
            ++r.ops;
          }
        }
      } else {  // free what the other thread gave us (cross-thread free)
        while (in.pop(&p)) {
          if (pool.free_page(p, self, cache))
            ++r.frees;
          else
            ++r.errors;
          ++r.ops;
        }
        ++r.ops;
      }
    }
    finished.fetch_add(1);
    // Keep freeing what the peer hands over until it is done too; then one last drain.
    auto drain = [&] {
      Page q;
      while (in.pop(&q)) {
        if (pool.free_page(q, self, cache))
          ++r.frees;
        else
          ++r.errors;
      }
    };
    while (finished.load() < 2) drain();
    drain();
    for (const Page& m : mine) {
      if (pool.free_page(m, self, cache))
        ++r.frees;
      else
        ++r.errors;
    }
    pool.detach_cache(cache);
  };
  std::thread a(body, 0), b(body, 1);
  a.join();
  b.join();
  Page q;
  ASSERT_FALSE(to_a.pop(&q));
  ASSERT_FALSE(to_b.pop(&q));
  pool.run_worker_once();  // the worker is still running; this pass is serialized with it

  const uint64_t ops = res[0].ops + res[1].ops;
  EXPECT_GE(ops, 2 * kOpsPerThread);
  EXPECT_EQ(res[0].errors + res[1].errors, 0u);
  const PoolStats s = pool.stats();
  EXPECT_EQ(s.violations(), 0u);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.frees, res[0].frees + res[1].frees);
  EXPECT_EQ(s.frees, res[0].allocs + res[1].allocs);
  EXPECT_EQ(s.transfers, res[0].transfers + res[1].transfers);
  EXPECT_EQ(s.alloc_cache + s.alloc_depot + s.alloc_reserve, res[0].allocs + res[1].allocs);
  EXPECT_EQ(s.fail_exhausted, res[0].exhausted + res[1].exhausted);
  EXPECT_LE(s.chunks, cfg.max_chunks);
  std::printf(
      "stress(%s): %llu ops, %llu allocs, %llu transfers, %llu exhausted, %llu chunks added, %llu "
      "removed\n",
      policy == ZeroPolicy::worker ? "worker" : "on_free", static_cast<unsigned long long>(ops),
      static_cast<unsigned long long>(res[0].allocs + res[1].allocs),
      static_cast<unsigned long long>(s.transfers),
      static_cast<unsigned long long>(s.fail_exhausted),
      static_cast<unsigned long long>(s.chunks_added),
      static_cast<unsigned long long>(s.chunks_removed));
  // The worker thread is live; audit takes the worker's lock, and no other thread runs.
  EXPECT_EQ(pool.audit(), "");
}

TEST(PagePoolStress, TwoThreadsCrossThreadFreesWorkerZeroing) {
  run_stress(ZeroPolicy::worker);
}
TEST(PagePoolStress, TwoThreadsCrossThreadFreesZeroOnFree) {
  run_stress(ZeroPolicy::on_free);
}

}  // namespace
}  // namespace labyrinth::alloc
