// Unit tests for PagePool: every rule of the allocator contract, each error path.
#include "allocator/page_pool.h"
#include "allocator/labyrinth_alloc.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace labyrinth::alloc {
namespace {

constexpr OwnerId kDev = 7;
constexpr OwnerId kGuest = 9;
constexpr OwnerId kOther = 11;
constexpr uint64_t kWindow = 4ull << 30;

// Small chunks (16 pages) keep the watermark arithmetic easy to follow.
PoolConfig small_config() {
  PoolConfig c;
  c.window_gpa = kWindow;
  c.window_size = 1ull << 30;
  c.chunk_bytes = 64 << 10;
  c.initial_chunks = 1;
  c.max_chunks = 4;
  c.min_pages = 4;
  c.low_pages = 8;
  c.high_pages = 24;
  c.cache_capacity = 8;
  c.start_worker = false;
  c.wait_timeout = std::chrono::milliseconds(20);
  c.shrink_delay = std::chrono::milliseconds(0);  // give back at once: tests step the worker
  return c;
}

// Counts what the pool asks of its sink, and forwards to a real host-only sink (which
// refuses overlapping and unknown mappings as KVM would).
class CountingSink : public MemslotSink {
 public:
  std::expected<uint32_t, Error> map(uint64_t gpa, void* host, uint64_t size) override {
    if (fail_next_map) {
      fail_next_map = false;
      return std::unexpected(Error::map_failed);
    }
    auto r = real_.map(gpa, host, size);
    if (r) ++mapped;
    return r;
  }
  std::expected<void, Error> unmap(uint32_t slot) override {
    if (fail_next_unmap) {
      fail_next_unmap = false;
      return std::unexpected(Error::map_failed);
    }
    auto r = real_.unmap(slot);
    if (r) ++unmapped;
    return r;
  }
  int mapped = 0;
  int unmapped = 0;
  bool fail_next_map = false;
  bool fail_next_unmap = false;

 private:
  HostOnlySink real_;
};

class PagePoolTest : public ::testing::Test {
 protected:
  void SetUp() override { sink_.emplace(); }
  std::unique_ptr<PagePool> make(const PoolConfig& c) {
    auto p = PagePool::create(c, *sink_);
    EXPECT_TRUE(p.has_value()) << (p ? "" : to_string(p.error()));
    return p ? std::move(*p) : nullptr;
  }
  std::optional<CountingSink> sink_;
};

TEST_F(PagePoolTest, RejectsBadConfigs) {
  auto bad = [&](auto mutate) {
    PoolConfig c = small_config();
    mutate(c);
    auto p = PagePool::create(c, *sink_);
    return !p && p.error() == Error::bad_config;
  };
  EXPECT_TRUE(bad([](PoolConfig& c) { c.window_gpa = 3ull << 30; }));           // below 4 GiB
  EXPECT_TRUE(bad([](PoolConfig& c) { c.window_gpa = (4ull << 30) + 4096; }));  // not 1 GiB aligned
  EXPECT_TRUE(bad([](PoolConfig& c) { c.window_size = 4096; }));                // too small
  EXPECT_TRUE(bad([](PoolConfig& c) { c.chunk_bytes = 12288; }));  // not a power of two
  EXPECT_TRUE(bad([](PoolConfig& c) { c.chunk_bytes = 2048; }));   // below a page
  EXPECT_TRUE(bad([](PoolConfig& c) { c.initial_chunks = 5; }));   // > max
  EXPECT_TRUE(bad([](PoolConfig& c) { c.max_chunks = 0; }));
  EXPECT_TRUE(bad([](PoolConfig& c) {
    c.min_pages = 10;
    c.low_pages = 8;
  }));                                                                 // min > low
  EXPECT_TRUE(bad([](PoolConfig& c) { c.high_pages = 1000; }));        // > max pages
  EXPECT_TRUE(bad([](PoolConfig& c) { c.cache_capacity = 3; }));       // odd
  EXPECT_TRUE(bad([](PoolConfig& c) { c.dirty_ring = 100; }));         // not a power of two
  EXPECT_TRUE(bad([](PoolConfig& c) { c.dirty_ring = 4; }));           // < cache_capacity
  EXPECT_TRUE(bad([](PoolConfig& c) { c.backing = Backing::thp; }));   // chunk < 2 MiB
  EXPECT_TRUE(bad([](PoolConfig& c) { c.window_gpa = 1ull << 62; }));  // beyond phys bits
  EXPECT_EQ(sink_->mapped, 0);
}

TEST_F(PagePoolTest, MapsInitialChunksAsMemslotsAndUnmapsOnDestruction) {
  PoolConfig c = small_config();
  c.initial_chunks = 3;
  {
    auto pool = make(c);
    ASSERT_TRUE(pool);
    EXPECT_EQ(sink_->mapped, 3);
    const PoolStats s = pool->stats();
    EXPECT_EQ(s.chunks, 3u);
    EXPECT_EQ(s.total_pages, 48u);
    EXPECT_EQ(s.free_clean, 48u);
    EXPECT_EQ(s.in_use, 0u);
    EXPECT_EQ(pool->audit(), "");
  }
  EXPECT_EQ(sink_->unmapped, 3);
}

TEST_F(PagePoolTest, MapFailureIsReported) {
  sink_->fail_next_map = true;
  auto p = PagePool::create(small_config(), *sink_);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), Error::map_failed);
}

// create() can fail before the pool's metadata exists: here the address-space
// reservation for the chunks, in a child whose address space is capped (RLIMIT_AS) so
// that the reservation really fails. The half-built pool is destroyed on the way out and
// must not read chunk metadata it never had (it did: a crash on an error path).
// Runs in the death test's child: 0 when create() reports pin_failed.
[[noreturn]] void create_with_capped_address_space() {
  PoolConfig c = small_config();
  c.chunk_bytes = 1 << 20;
  c.max_chunks = 1024;  // a 1 GiB reservation
  std::ifstream statm("/proc/self/statm");
  uint64_t vm_pages = 0;
  statm >> vm_pages;
  const uint64_t now = vm_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  rlimit cap{};
  cap.rlim_cur = cap.rlim_max = now + (256u << 20);
  if (setrlimit(RLIMIT_AS, &cap) != 0) std::_Exit(3);
  HostOnlySink sink;
  auto p = PagePool::create(c, sink);
  std::_Exit(!p && p.error() == Error::pin_failed ? 0 : 2);
}

TEST(PagePoolCreate, FailureBeforeTheMetadataExistsIsAnErrorNotACrash) {
  EXPECT_EXIT(create_with_capped_address_space(), ::testing::ExitedWithCode(0), "");
}

TEST_F(PagePoolTest, AtomicAllocReturnsZeroedExclusivePageInsideWindow) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();  // fresh pool: slots are free
  auto page = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
  ASSERT_TRUE(page);
  EXPECT_GE(page->gpa, kWindow);
  EXPECT_LT(page->gpa, kWindow + 16 * kPageSize);
  EXPECT_EQ(page->gpa % kPageSize, 0u);
  EXPECT_TRUE(std::all_of(page->host, page->host + kPageSize,
                          [](std::byte b) { return b == std::byte{0}; }));
  EXPECT_EQ(pool->owner_of(*page).value(), kDev);
  EXPECT_EQ(pool->stats().in_use, 1u);
  EXPECT_TRUE(pool->free_page(*page, kDev, cache));
}

TEST_F(PagePoolTest, EveryNewOwnerGetsAZeroedPageUnderBothZeroPolicies) {
  for (ZeroPolicy zp : {ZeroPolicy::worker, ZeroPolicy::on_free}) {
    PoolConfig c = small_config();
    c.zero_policy = zp;
    c.max_chunks = 1;  // exactly these 16 pages, no growth
    c.high_pages = 16;
    auto pool = make(c);
    PageCache* cache = pool->attach_cache().value();
    // Dirty every page, free them all, then take every page again.
    std::vector<Page> pages;
    while (auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) {
      std::memset(p->host, 0xA5, kPageSize);
      pages.push_back(*p);
    }
    ASSERT_EQ(pages.size(), 16u);
    for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
    pool->detach_cache(cache);
    pool->run_worker_once();  // zeroes (worker policy); no-op otherwise
    cache = pool->attach_cache().value();
    size_t seen = 0;
    while (auto p = pool->alloc_page(kGfpAtomicExclusive, kOther, cache)) {
      ++seen;
      EXPECT_TRUE(
          std::all_of(p->host, p->host + kPageSize, [](std::byte b) { return b == std::byte{0}; }))
          << "page " << p->index << " carried data from its previous owner";
    }
    EXPECT_EQ(seen, 16u);
  }
}

TEST_F(PagePoolTest, TransferMovesOwnershipAndOnlyTheOwnerMayFree) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();  // pool has 16 pages
  auto moved = pool->transfer(p, kDev, kGuest);
  ASSERT_TRUE(moved);
  EXPECT_EQ(pool->owner_of(p).value(), kGuest);
  // The device no longer owns it: its free and transfer are rejected and counted.
  auto f = pool->free_page(p, kDev, cache);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), Error::not_owner);
  auto t = pool->transfer(p, kDev, kOther);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), Error::not_owner);
  EXPECT_EQ(pool->owner_of(p).value(), kGuest);
  EXPECT_EQ(pool->stats().violation_not_owner, 2u);
  // Back to the device, which frees it.
  ASSERT_TRUE(pool->transfer(p, kGuest, kDev));
  EXPECT_TRUE(pool->free_page(p, kDev, cache));
  EXPECT_EQ(pool->stats().transfers, 2u);
}

TEST_F(PagePoolTest, DoubleFreeIsRejectedAndCounted) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  ASSERT_TRUE(pool->free_page(p, kDev, cache));
  auto again = pool->free_page(p, kDev, cache);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), Error::double_free);
  EXPECT_EQ(pool->stats().violation_double_free, 1u);
  pool->detach_cache(cache);
  EXPECT_EQ(pool->audit(), "");
}

TEST_F(PagePoolTest, StaleHandleIsRejectedAfterThePageIsReused) {
  PoolConfig c = small_config();
  c.zero_policy = ZeroPolicy::on_free;  // freed pages are recycled LIFO by the cache
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  Page old = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  ASSERT_TRUE(pool->free_page(old, kDev, cache));
  Page now = pool->alloc_page(kGfpAtomicExclusive, kOther, cache).value();
  ASSERT_EQ(now.index, old.index);  // same page, new life
  EXPECT_NE(now.generation, old.generation);
  auto f = pool->free_page(old, kDev, cache);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), Error::stale_handle);
  // Even with the right owner, an old generation is stale.
  Page forged = old;
  auto t = pool->transfer(forged, kOther, kDev);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error(), Error::stale_handle);
  EXPECT_EQ(pool->owner_of(now).value(), kOther);
  EXPECT_EQ(pool->stats().violation_stale, 2u);
}

TEST_F(PagePoolTest, AddressesOutsideTheWindowAreRejected) {
  auto pool = make(small_config());
  EXPECT_EQ(pool->lookup_gpa(kWindow - kPageSize).error(), Error::out_of_window);
  EXPECT_EQ(pool->lookup_gpa(kWindow + 1).error(), Error::out_of_window);  // misaligned
  EXPECT_EQ(pool->lookup_gpa(kWindow + 16 * kPageSize).error(), Error::out_of_window);  // no chunk
  EXPECT_EQ(pool->lookup_gpa(kWindow + (1ull << 40)).error(), Error::out_of_window);
  EXPECT_EQ(pool->lookup_gpa(~0ull & ~(kPageSize - 1)).error(), Error::out_of_window);
  Page bogus{};
  bogus.pool_id = pool->id();
  bogus.index = 1u << 30;
  EXPECT_EQ(pool->free_page(bogus, kDev, nullptr).error(), Error::out_of_window);
  bogus.index = 20;  // inside max_pages but its chunk is not mapped
  bogus.gpa = kWindow + 20 * kPageSize;
  EXPECT_EQ(pool->transfer(bogus, kDev, kGuest).error(), Error::out_of_window);
  EXPECT_EQ(pool->stats().violation_out_of_window, 7u);
}

TEST_F(PagePoolTest, LookupGpaFindsTheCurrentHandle) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  ASSERT_TRUE(pool->transfer(p, kDev, kGuest));
  Page found = pool->lookup_gpa(p.gpa).value();  // allocated page in a live chunk
  EXPECT_EQ(found.index, p.index);
  EXPECT_EQ(found.generation, p.generation);
  EXPECT_EQ(found.host, p.host);
  // A guest handing back the address gives ownership back only if it owned the page.
  EXPECT_TRUE(pool->transfer(found, kGuest, kDev));
  EXPECT_EQ(pool->transfer(found, kGuest, kDev).error(), Error::not_owner);  // returned twice
}

TEST_F(PagePoolTest, PagesNeverCrossPools) {
  auto a = make(small_config());
  PoolConfig c2 = small_config();
  c2.window_gpa = 8ull << 30;
  auto b = make(c2);
  PageCache* ca = a->attach_cache().value();
  PageCache* cb = b->attach_cache().value();
  Page p = a->alloc_page(kGfpAtomicExclusive, kDev, ca).value();
  EXPECT_EQ(b->free_page(p, kDev, cb).error(), Error::foreign_pool);
  EXPECT_EQ(b->transfer(p, kDev, kGuest).error(), Error::foreign_pool);
  EXPECT_EQ(b->stats().violation_foreign_pool, 2u);
  // Another pool's cache: a typed error, counted, and the page is untouched.
  EXPECT_EQ(a->free_page(p, kDev, cb).error(), Error::bad_cache);
  EXPECT_EQ(a->alloc_page(kGfpAtomicExclusive, kDev, cb).error(), Error::bad_cache);
  EXPECT_EQ(a->stats().violation_bad_cache, 2u);
  EXPECT_TRUE(a->free_page(p, kDev, ca));
}

TEST_F(PagePoolTest, BadOwnerAndFlagsAreRejected) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  EXPECT_EQ(pool->alloc_page(kGfpAtomicExclusive, kNoOwner, cache).error(), Error::bad_owner);
  EXPECT_EQ(pool->alloc_page(kGfpAtomic, kDev, cache).error(), Error::bad_flags);  // not exclusive
  EXPECT_EQ(pool->alloc_page(kGfpAtomicExclusive | 0x80, kDev, cache).error(), Error::bad_flags);
  EXPECT_EQ(pool->alloc_page(kGfpAtomicExclusive, kDev, nullptr).error(), Error::bad_cache);
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  EXPECT_EQ(pool->transfer(p, kDev, kNoOwner).error(), Error::bad_owner);
  EXPECT_EQ(pool->free_page(p, kNoOwner, cache).error(), Error::not_owner);
}

TEST_F(PagePoolTest, AtomicAllocFailsImmediatelyWhenEmpty) {
  // Room to grow and no worker: a caller that waits here can only time out, which the
  // pool counts. The pool's counters, not a clock, tell whether a call waited.
  auto pool = make(small_config());  // 16 pages, max 4 chunks, start_worker = false
  PageCache* cache = pool->attach_cache().value();
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(pool->alloc_page(kGfpAtomicExclusive, kDev, cache));
  auto r = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), Error::exhausted);
  PoolStats s = pool->stats();
  EXPECT_EQ(s.fail_exhausted, 1u);
  EXPECT_EQ(s.fail_timed_out, 0u);  // it did not wait for growth
  EXPECT_EQ(s.alloc_wait, 0u);      // nor go the waiting callers' way
  EXPECT_EQ(s.alloc_waited, 0u);
  EXPECT_EQ(s.chunks, 1u);
  // The same state makes a non-atomic caller wait (and, with nobody to grow the pool,
  // time out): the counters above would have shown that.
  EXPECT_EQ(pool->alloc_page(kGfpExclusive, kDev, nullptr).error(), Error::timed_out);
  s = pool->stats();
  EXPECT_EQ(s.fail_timed_out, 1u);
  EXPECT_EQ(s.fail_exhausted, 1u);
}

TEST_F(PagePoolTest, AtomicReserveIsOnlyForAtomicCallers) {
  PoolConfig c = small_config();
  c.max_chunks = 1;
  c.high_pages = 16;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  // Non-atomic callers may take the depot down to min_pages (4) and no further.
  int taken = 0;
  while (pool->alloc_page(kGfpExclusive, kDev, nullptr)) ++taken;
  EXPECT_EQ(taken, 12);
  PoolStats s = pool->stats();
  EXPECT_EQ(s.free_clean, 4u);
  EXPECT_EQ(s.fail_reserve_only, 1u);  // refused at once (at max_chunks), not after a wait
  EXPECT_EQ(s.fail_timed_out, 0u);
  EXPECT_EQ(pool->alloc_page(kGfpExclusive, kDev, nullptr).error(), Error::reserve_only);
  EXPECT_EQ(s.alloc_wait, 12u);
  // An atomic caller may take the reserve; it is counted as such.
  auto r = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
  ASSERT_TRUE(r);
  s = pool->stats();
  EXPECT_EQ(s.alloc_reserve, 1u);
  EXPECT_EQ(s.free_clean, 0u);  // the refill took the whole reserve into the cache
}

TEST_F(PagePoolTest, NonAtomicAllocWaitsForTheWorkerToGrow) {
  // The test thread is the worker (start_worker = false), so the pool cannot grow before
  // the allocation is seen waiting: the wait is certain, not a matter of scheduling.
  PoolConfig c = small_config();
  c.wait_timeout = std::chrono::milliseconds(20'000);  // a bound: the worker pass ends it
  auto pool = make(c);
  std::vector<Page> pages;
  for (int i = 0; i < 12; ++i) {  // down to min_pages: what is left is the atomic reserve
    auto p = pool->alloc_page(kGfpExclusive, kDev, nullptr);
    ASSERT_TRUE(p) << to_string(p.error());
    pages.push_back(*p);
  }
  ASSERT_EQ(pool->stats().alloc_wait_began, 0u);
  std::atomic<bool> done{false};
  std::expected<Page, Error> waited = std::unexpected(Error::exhausted);
  std::thread t([&] {
    waited = pool->alloc_page(kGfpExclusive, kDev, nullptr);
    done.store(true, std::memory_order_release);
  });
  // Bounded wait for the allocation to go to sleep in the pool.
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool->stats().alloc_wait_began == 0 && !done.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < limit) {
    std::this_thread::yield();
  }
  EXPECT_EQ(pool->stats().alloc_wait_began, 1u);
  EXPECT_FALSE(done.load(std::memory_order_acquire)) << "returned without the worker";
  EXPECT_EQ(pool->stats().chunks, 1u);
  pool->run_worker_once();  // below low: grows to high and wakes the waiter
  t.join();
  ASSERT_TRUE(waited) << to_string(waited.error());
  pages.push_back(*waited);
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.alloc_waited, 1u);  // it got its page after waiting, not at once
  EXPECT_EQ(s.alloc_wait, 13u);
  EXPECT_EQ(s.fail_timed_out, 0u);
  EXPECT_GE(s.chunks, 2u);
  EXPECT_EQ(s.chunks_added, s.chunks);  // the initial chunk counts as added too
  std::set<uint64_t> gpas;
  for (const Page& p : pages) gpas.insert(p.gpa);
  EXPECT_EQ(gpas.size(), pages.size());
}

// The worker's loop on a thread the caller owns (how the VMM runs it): it serves a
// non-atomic allocation that waits for growth, and stop_worker() ends it even while it
// sleeps. The poll is an hour, so neither can come from the poll timer.
TEST_F(PagePoolTest, RunWorkerOnTheCallersThreadGrowsForWaitersAndStops) {
  PoolConfig c = small_config();
  c.worker_poll = std::chrono::hours(1);
  c.wait_timeout = std::chrono::milliseconds(20'000);  // a bound: the worker ends the wait
  auto pool = make(c);
  std::thread worker([&] { pool->run_worker(); });
  std::vector<Page> pages;
  for (int i = 0; i < 13; ++i) {  // the 13th finds only the atomic reserve: needs growth
    auto p = pool->alloc_page(kGfpExclusive, kDev, nullptr);
    ASSERT_TRUE(p) << "allocation " << i << ": " << to_string(p.error());
    pages.push_back(*p);
  }
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.fail_timed_out, 0u);
  EXPECT_GE(s.chunks, 2u);
  pool->stop_worker();
  worker.join();       // returns: stop_worker wakes the sleeping loop
  pool->run_worker();  // after stop_worker, returns at once
  for (const Page& p : pages) EXPECT_TRUE(pool->free_page(p, kDev, nullptr));
  pool->run_worker_once();
  EXPECT_EQ(pool->audit(), "");
}

TEST_F(PagePoolTest, WorkerGrowsFromLowToHighUpToMaxAndShrinksBack) {
  auto pool = make(small_config());  // 16 pages, low 8, high 24, max 4 chunks (64 pages)
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  for (int i = 0; i < 10; ++i)
    pages.push_back(pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value());
  // 10 taken: the cache holds 2 more, the depot 4 (< low).
  pool->run_worker_once();
  PoolStats s = pool->stats();
  EXPECT_GE(s.free_clean, 24u);  // grown to the high watermark
  EXPECT_EQ(s.chunks, 3u);
  EXPECT_EQ(s.below_low_events, 1u);
  EXPECT_EQ(sink_->mapped, 3);
  // Take everything: growth stops at max_chunks and the atomic path reports exhaustion.
  for (;;) {
    auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
    if (!p) {
      EXPECT_EQ(p.error(), Error::exhausted);
      pool->run_worker_once();
      p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
      if (!p) break;
    }
    pages.push_back(*p);
  }
  s = pool->stats();
  EXPECT_EQ(s.chunks, 4u);
  EXPECT_EQ(pages.size(), 64u);
  EXPECT_EQ(s.in_use, 64u);
  EXPECT_EQ(pool->audit(), "");
  // Give everything back: the worker zeroes, then returns chunks above the high watermark.
  for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  pool->run_worker_once();
  pool->run_worker_once();
  s = pool->stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_LT(s.chunks, 4u);
  EXPECT_GE(s.chunks_removed, 1u);
  EXPECT_GE(s.free_clean, 24u);  // never below high by shrinking
  EXPECT_EQ(static_cast<uint64_t>(sink_->unmapped), s.chunks_removed);
  EXPECT_EQ(s.chunks_high_water, 4u);
  EXPECT_EQ(pool->audit(), "");
  // The last page came from the last chunk added, which the shrink gave back first (it
  // retires chunks from the top): its descriptor is offline, so an old handle into it is
  // refused as outside the pool's live chunks and counted, not taken for a double free.
  const Page& gone = pages.back();
  ASSERT_EQ(pool->lookup_gpa(gone.gpa).error(), Error::out_of_window);  // its chunk is gone
  const uint64_t out_before = pool->stats().violation_out_of_window;
  auto f = pool->free_page(gone, kDev, nullptr);
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error(), Error::out_of_window);
  EXPECT_EQ(pool->stats().violation_out_of_window, out_before + 1);
  EXPECT_EQ(pool->stats().violation_double_free, 0u);
  // A page of the first chunk, which stays, is a plain double free.
  const Page& kept = pages.front();
  ASSERT_EQ(pool->lookup_gpa(kept.gpa).error(), Error::double_free);  // free, chunk live
  EXPECT_EQ(pool->free_page(kept, kDev, nullptr).error(), Error::double_free);
}

TEST_F(PagePoolTest, HugetlbWithoutReservedPagesIsAClearError) {
  PoolConfig c = small_config();
  c.chunk_bytes = 2 << 20;
  c.backing = Backing::hugetlb;
  c.high_pages = 512;
  auto p = PagePool::create(c, *sink_);
  if (p) {  // a host with nr_hugepages reserved: the pool must then work on them
    EXPECT_EQ((*p)->stats().total_pages, 512u);
    return;
  }
  EXPECT_EQ(p.error(), Error::hugetlb_unavailable);
  EXPECT_NE(to_string(p.error()).find("nr_hugepages"), std::string_view::npos);
}

// The selected word of a THP setting file ("always [madvise] never" -> "madvise"), or ""
// if the file is missing (a kernel without THP, or without per-size settings).
std::string thp_setting(const std::string& path) {
  std::ifstream f(path);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto open = all.find('[');
  const auto close = all.find(']', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  return all.substr(open + 1, close - open - 1);
}

// AnonHugePages (kB) of the mapping that contains addr, from /proc/self/smaps; -1 if no
// mapping contains it.
long anon_huge_kb(const void* addr) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      return std::stol(line.substr(14));
    }
  }
  return -1;
}

// THP backing is advice (MADV_HUGEPAGE) that the kernel may not follow: the test checks
// that the chunk really is one 2 MiB page. Where the system setting forbids THP the pool
// cannot have it, and the test says so instead of passing.
TEST_F(PagePoolTest, TransparentHugePageBackingWorks) {
  const std::string kThp = "/sys/kernel/mm/transparent_hugepage/";
  const std::string enabled = thp_setting(kThp + "enabled");
  const std::string pmd = thp_setting(kThp + "hugepages-2048kB/enabled");  // "" before 6.8
  ASSERT_FALSE(enabled.empty()) << "no " << kThp << "enabled: kernel without THP";
  ASSERT_TRUE(enabled != "never" || pmd == "always" || pmd == "madvise")
      << kThp << "enabled is [never]: set it to madvise (or always) to test THP backing";
  ASSERT_NE(pmd, "never") << kThp << "hugepages-2048kB/enabled is [never]: set it to inherit, "
                          << "madvise or always to test THP backing";
  PoolConfig c = small_config();
  c.chunk_bytes = 2 << 20;
  c.backing = Backing::thp;
  c.high_pages = 512;
  c.low_pages = 64;
  auto pool = make(c);
  ASSERT_TRUE(pool);
  PageCache* cache = pool->attach_cache().value();
  auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
  ASSERT_TRUE(p);
  EXPECT_EQ(pool->stats().total_pages, 512u);
  // The owner writes its page. ASan's mlock interceptor does nothing, so in that build
  // the chunk is not faulted in at create() and only this write makes the kernel back it.
  std::memset(p->host, 0x5A, kPageSize);
  // The chunk is 2 MiB aligned: its start is the page's address rounded down.
  const auto* chunk = reinterpret_cast<const std::byte*>(reinterpret_cast<uintptr_t>(p->host) &
                                                         ~uintptr_t{(2 << 20) - 1});
  EXPECT_EQ(anon_huge_kb(chunk), 2048)
      << "the chunk is not backed by a transparent huge page (THP enabled [" << enabled
      << "], defrag [" << thp_setting(kThp + "defrag")
      << "]): no 2 MiB page was free or could be compacted";
}

TEST_F(PagePoolTest, ShrinkWaitsForTheSurplusToLast) {
  PoolConfig c = small_config();
  c.shrink_delay = std::chrono::milliseconds(50);
  c.initial_chunks = 1;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  for (int i = 0; i < 14; ++i)
    pages.push_back(pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value());
  pool->run_worker_once();  // below low: grows
  ASSERT_GE(pool->stats().chunks, 2u);
  for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  pool->run_worker_once();  // surplus starts now: nothing given back yet
  pool->run_worker_once();
  EXPECT_EQ(pool->stats().chunks_removed, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  pool->run_worker_once();  // the surplus lasted: give back
  EXPECT_GE(pool->stats().chunks_removed, 1u);
}

TEST_F(PagePoolTest, ChunkWhoseMemslotCannotBeRemovedStaysPinnedAndUnused) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  for (int i = 0; i < 14; ++i)
    pages.push_back(pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value());
  pool->run_worker_once();  // grows to 3 chunks
  for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  sink_->fail_next_unmap = true;
  pool->run_worker_once();  // zeroes, then tries to give chunks back: the first unmap fails
  pool->run_worker_once();
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.unmap_failures, 1u);
  EXPECT_EQ(pool->audit(), "");  // the zombie's pages are offline, the rest consistent
  // Its pages are never handed out again: every allocatable page is in a live chunk.
  cache = pool->attach_cache().value();
  while (auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) {
    ASSERT_TRUE(pool->lookup_gpa(p->gpa));
  }
}

TEST_F(PagePoolTest, AtomicFailuresMakeTheWorkerGrowEvenAboveTheLowWatermark) {
  auto pool = make(small_config());  // 16 pages, low 8, max 4 chunks
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  while (auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) pages.push_back(*p);
  ASSERT_EQ(pages.size(), 16u);  // and one atomic allocation failed
  for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  pool->run_worker_once();  // zeroes all 16 (depot well above low) and sees the failure
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.grow_on_failure, 1u);
  EXPECT_EQ(s.chunks, 2u);
  pool->run_worker_once();  // no new failure: no more growth
  EXPECT_EQ(pool->stats().chunks, 2u);
}

TEST_F(PagePoolTest, CacheSlotsAreLimited) {
  PoolConfig c = small_config();
  c.max_caches = 2;
  auto pool = make(c);
  PageCache* a = pool->attach_cache().value();
  ASSERT_TRUE(pool->attach_cache());
  EXPECT_EQ(pool->attach_cache().error(), Error::no_cache_slot);
  pool->detach_cache(a);
  EXPECT_TRUE(pool->attach_cache());
}

// Issue 8, hole 1: free_dirty is a count of pages; it must never exceed the pool (it
// wrapped to 2^64 - 1 when the worker's subtraction overtook a free's addition).
TEST_F(PagePoolTest, FreeDirtyNeverExceedsThePoolWhileTheWorkerDrains) {
  PoolConfig c = small_config();
  c.start_worker = true;
  c.worker_poll = std::chrono::microseconds(1);
  c.max_chunks = 1;
  c.high_pages = 16;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, samples{0};
  std::thread poller([&] {
    while (!done.load(std::memory_order_relaxed)) {
      const PoolStats s = pool->stats();
      if (s.free_dirty > s.total_pages) bad.fetch_add(1, std::memory_order_relaxed);
      samples.fetch_add(1, std::memory_order_relaxed);
    }
  });
  for (int round = 0; round < 200'000 || samples.load(std::memory_order_relaxed) < 100'000;
       ++round) {
    auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache);
    if (p) {
      ASSERT_TRUE(pool->free_page(*p, kDev, nullptr));  // straight to the shared list
    }
  }
  done = true;
  poller.join();
  EXPECT_GT(samples.load(), 0u);
  EXPECT_EQ(bad.load(), 0u) << "free_dirty above total_pages in " << bad << " of " << samples
                            << " samples";
}

// Issue 8, hole 2: the generation has 62 bits; bits the page has not reached, or beyond
// them, make a handle stale. (A 30-bit generation accepted gen | 1 << 30.)
TEST_F(PagePoolTest, HandlesFromAnotherEraOrOutOfRangeAreStale) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  for (uint64_t extra : {1ull << 30, 1ull << 31, 1ull << 61, 1ull << 62, 1ull << 63}) {
    Page q = p;
    q.generation |= extra;
    EXPECT_EQ(pool->owner_of(q).error(), Error::stale_handle) << extra;
    EXPECT_EQ(pool->free_page(q, kDev, cache).error(), Error::stale_handle) << extra;
    EXPECT_EQ(pool->transfer(q, kDev, kGuest).error(), Error::stale_handle) << extra;
  }
  EXPECT_EQ(pool->stats().violation_stale, 10u);
  EXPECT_EQ(pool->owner_of(p).value(), kDev);
  EXPECT_TRUE(pool->free_page(p, kDev, cache));
}

// Issue 8, hole 3: gpa and host are part of the handle and are checked.
TEST_F(PagePoolTest, HandlesWithForgedAddressFieldsAreRejected) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  Page q = p;
  q.gpa = 0x1000;
  q.host = nullptr;
  EXPECT_EQ(pool->transfer(q, kDev, kGuest).error(), Error::bad_handle);
  q = p;
  q.host = nullptr;
  EXPECT_EQ(pool->transfer(q, kDev, kGuest).error(), Error::bad_handle);
  q = p;
  q.gpa = 0xdead000000;
  EXPECT_EQ(pool->free_page(q, kDev, cache).error(), Error::bad_handle);
  q = p;
  q.host += kPageSize;  // another page's memory
  EXPECT_EQ(pool->free_page(q, kDev, cache).error(), Error::bad_handle);
  EXPECT_EQ(pool->stats().violation_bad_handle, 4u);
  EXPECT_EQ(pool->owner_of(p).value(), kDev);
  EXPECT_TRUE(pool->free_page(p, kDev, cache));
}

// Issue 8, hole 5: with worker zeroing, every freed page is within the worker's reach.
// 32 pages, cache capacity 8, 31 freed, one worker pass: all 31 come back.
TEST_F(PagePoolTest, WorkerZeroingStrandsNoFreedPageInACache) {
  PoolConfig c = small_config();
  c.chunk_bytes = 128 << 10;  // 32 pages
  c.max_chunks = 1;
  c.high_pages = 24;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  while (auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) pages.push_back(*p);
  ASSERT_EQ(pages.size(), 32u);
  for (size_t i = 0; i < 31; ++i) ASSERT_TRUE(pool->free_page(pages[i], kDev, cache));
  EXPECT_EQ(pool->stats().free_dirty, 31u);
  pool->run_worker_once();
  EXPECT_EQ(pool->stats().free_dirty, 0u);
  int again = 0;
  while (pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) ++again;
  EXPECT_EQ(again, 31);
  EXPECT_EQ(pool->stats().pages_zeroed, 31u);
}

// Issue 8, hole 6: a detached cache is refused (typed, counted), not silently used.
TEST_F(PagePoolTest, DetachedCacheIsRefused) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  PageCache* other = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  pool->detach_cache(cache);
  EXPECT_EQ(pool->alloc_page(kGfpAtomicExclusive, kDev, cache).error(), Error::bad_cache);
  EXPECT_EQ(pool->free_page(p, kDev, cache).error(), Error::bad_cache);
  EXPECT_EQ(pool->stats().violation_bad_cache, 2u);
  EXPECT_EQ(pool->owner_of(p).value(), kDev);  // untouched
  EXPECT_TRUE(pool->free_page(p, kDev, other));
  EXPECT_EQ(pool->audit(), "");
}

// Issue 8, hole 7: lookup_gpa returns allocated pages only; transfer_gpa takes a page
// back by address only from its owner of now, in one CAS.
TEST_F(PagePoolTest, ReturnsByAddressOnlyFromTheOwnerOfNow) {
  PoolConfig c = small_config();
  c.zero_policy = ZeroPolicy::on_free;  // the freed page is the cache's next allocation
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  Page p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  ASSERT_TRUE(pool->transfer(p, kDev, kGuest));
  // Bad addresses.
  EXPECT_EQ(pool->transfer_gpa(p.gpa + 8, kGuest, kDev).error(), Error::out_of_window);
  EXPECT_EQ(pool->transfer_gpa(kWindow + 20 * kPageSize, kGuest, kDev).error(),
            Error::out_of_window);
  // Someone else's claim, and a wrong generation, change nothing.
  EXPECT_EQ(pool->transfer_gpa(p.gpa, kOther, kDev).error(), Error::not_owner);
  EXPECT_EQ(pool->transfer_gpa(p.gpa, kGuest, kDev, p.generation + 1).error(), Error::stale_handle);
  EXPECT_EQ(pool->owner_of(p).value(), kGuest);
  // The owner's return works once.
  Page back = pool->transfer_gpa(p.gpa, kGuest, kDev, p.generation).value();
  EXPECT_EQ(back.index, p.index);
  EXPECT_EQ(back.generation, p.generation);
  EXPECT_EQ(back.host, p.host);
  EXPECT_EQ(pool->transfer_gpa(p.gpa, kGuest, kDev).error(), Error::not_owner);  // twice
  ASSERT_TRUE(pool->free_page(back, kDev, cache));
  // Free now: a third return, and a lookup, say so.
  EXPECT_EQ(pool->transfer_gpa(p.gpa, kGuest, kDev).error(), Error::double_free);
  EXPECT_EQ(pool->lookup_gpa(p.gpa).error(), Error::double_free);
  // Reallocated and delivered to the guest again: a duplicate return naming the old
  // life's generation is stale; the new life's is valid.
  Page again = pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value();
  ASSERT_EQ(again.index, p.index);
  ASSERT_TRUE(pool->transfer(again, kDev, kGuest));
  EXPECT_EQ(pool->transfer_gpa(p.gpa, kGuest, kDev, p.generation).error(), Error::stale_handle);
  EXPECT_TRUE(pool->transfer_gpa(p.gpa, kGuest, kDev, again.generation));
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.violation_not_owner, 2u);
  EXPECT_EQ(s.violation_stale, 2u);
  EXPECT_EQ(s.violation_double_free, 1u);
}

// Issue 8, hole 4: the C API's handles are read by the atomic calls, so they live in
// locked memory like the pool (they were plain heap objects). Not built under the
// sanitizers: their runtimes make mlock a no-op (the plain build checks this; compiled
// out rather than skipped, as CI fails on skips).
#ifndef LABYRINTH_SANITIZER
bool in_locked_mapping(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      inside = a >= lo && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line.find(" lo") != std::string::npos;
    }
  }
  return false;
}

TEST(AllocatorCApi, PoolAndCacheHandlesLiveInLockedMemory) {
  labyrinth_pool_config cfg;
  labyrinth_pool_config_init(&cfg);
  cfg.max_chunks = 1;
  cfg.high_pages = 256;
  labyrinth_pool* pool = nullptr;
  ASSERT_EQ(labyrinth_pool_create_host_only(&cfg, &pool), LABYRINTH_OK);
  labyrinth_cache* cache = labyrinth_cache_attach(pool);
  ASSERT_NE(cache, nullptr);
  EXPECT_TRUE(in_locked_mapping(pool));
  EXPECT_TRUE(in_locked_mapping(cache));
  labyrinth_page page;
  int err = -1;
  ASSERT_NE(labyrinth_void_alloc_page_gfp_atomic_exclusive(cache, 1, &page, &err), nullptr);
  EXPECT_TRUE(in_locked_mapping(page.host));
  EXPECT_EQ(labyrinth_page_free(cache, &page, 1), LABYRINTH_OK);
  labyrinth_cache_detach(cache);
  labyrinth_pool_destroy(pool);
}
#endif  // !LABYRINTH_SANITIZER

TEST_F(PagePoolTest, CountersAddUp) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  std::vector<Page> pages;
  for (int i = 0; i < 10; ++i)
    pages.push_back(pool->alloc_page(kGfpAtomicExclusive, kDev, cache).value());
  for (const Page& p : pages) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.alloc_cache + s.alloc_depot + s.alloc_reserve, 10u);
  EXPECT_EQ(s.cache_refills, s.alloc_depot + s.alloc_reserve);
  EXPECT_EQ(s.frees, 10u);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.violations(), 0u);
}

TEST_F(PagePoolTest, BatchAllocHandsOutDistinctZeroedPagesUntilTheDepotRunsDry) {
  PoolConfig c = small_config();
  c.max_chunks = 1;  // 16 pages, no growth
  c.high_pages = 16;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  Page out[32];
  auto got = pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, out, 10);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, 10u);
  auto more = pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, out + 10, 22);
  ASSERT_TRUE(more);
  EXPECT_EQ(*more, 6u);  // the pool ran dry after 16 pages in all
  std::set<uint64_t> gpas;
  for (uint32_t i = 0; i < 16; ++i) {
    gpas.insert(out[i].gpa);
    EXPECT_EQ(pool->owner_of(out[i]).value(), kDev);
    EXPECT_TRUE(std::all_of(out[i].host, out[i].host + kPageSize,
                            [](std::byte b) { return b == std::byte{0}; }));
    std::memset(out[i].host, 0xA5, kPageSize);  // dirty it: the next owner must get zeroes
  }
  EXPECT_EQ(gpas.size(), 16u);
  EXPECT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, out + 16, 1).error(),
            Error::exhausted);
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.alloc_cache + s.alloc_depot + s.alloc_reserve, 16u);
  EXPECT_EQ(s.fail_exhausted, 1u);
  EXPECT_EQ(pool->free_pages(out, 16, kDev, cache), 16u);
  pool->run_worker_once();
  ASSERT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kGuest, cache, out, 16).value(), 16u);
  for (uint32_t i = 0; i < 16; ++i) {
    EXPECT_TRUE(std::all_of(out[i].host, out[i].host + kPageSize,
                            [](std::byte b) { return b == std::byte{0}; }));
  }
  EXPECT_EQ(pool->free_pages(out, 16, kGuest, cache), 16u);
  EXPECT_EQ(pool->audit(), "");
}

TEST_F(PagePoolTest, BatchAllocRefusesWhatTheSingleCallRefuses) {
  auto pool = make(small_config());
  PageCache* cache = pool->attach_cache().value();
  Page out[4];
  EXPECT_EQ(pool->alloc_pages(kGfpExclusive, kDev, cache, out, 4).error(), Error::bad_flags);
  EXPECT_EQ(pool->alloc_pages(kGfpAtomic, kDev, cache, out, 4).error(), Error::bad_flags);
  EXPECT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kNoOwner, cache, out, 4).error(),
            Error::bad_owner);
  EXPECT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, nullptr, out, 4).error(),
            Error::bad_cache);
  EXPECT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, out, 0).value(), 0u);
  EXPECT_EQ(pool->stats().in_use, 0u);
}

// Every page of a batch gets free_page's checks: the bad ones are refused and counted,
// the good ones are still freed, under both zero policies.
TEST_F(PagePoolTest, BatchFreeRefusesBadPagesOneByOneAndFreesTheRest) {
  for (ZeroPolicy zp : {ZeroPolicy::worker, ZeroPolicy::on_free}) {
    PoolConfig c = small_config();
    c.zero_policy = zp;
    auto pool = make(c);
    PageCache* cache = pool->attach_cache().value();
    Page p[6];
    ASSERT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, p, 6).value(), 6u);
    ASSERT_TRUE(pool->transfer(p[4], kDev, kGuest));  // now the guest's
    Page stale = p[5];
    stale.generation += 1;
    Page forged = p[3];
    forged.gpa += kPageSize;
    const Page batch[] = {p[0], p[1], p[0], p[4], stale, forged, p[2]};
    Error first{};
    EXPECT_EQ(pool->free_pages(batch, std::size(batch), kDev, cache, &first), 3u);
    EXPECT_EQ(first, Error::double_free);  // p[0] again, in the same batch
    const PoolStats s = pool->stats();
    EXPECT_EQ(s.violation_double_free, 1u);
    EXPECT_EQ(s.violation_not_owner, 1u);
    EXPECT_EQ(s.violation_stale, 1u);
    EXPECT_EQ(s.violation_bad_handle, 1u);
    EXPECT_EQ(s.frees, 3u);
    EXPECT_EQ(s.in_use, 3u);  // p[3], p[4] (the guest's), p[5]
    EXPECT_EQ(pool->owner_of(p[4]).value(), kGuest);
    const Page rest[] = {p[3], p[5]};
    EXPECT_EQ(pool->free_pages(rest, 2, kDev, cache), 2u);
    EXPECT_TRUE(pool->free_page(p[4], kGuest, cache));
    pool->run_worker_once();
    pool->detach_cache(cache);
    EXPECT_EQ(pool->audit(), "");
    EXPECT_EQ(pool->stats().in_use, 0u);
  }
}

// A batch larger than the room in the cache's dirty ring spills the rest to the shared
// dirty list: no page is lost, every one comes back clean.
TEST_F(PagePoolTest, BatchFreeBeyondTheDirtyRingSpillsAndLosesNothing) {
  PoolConfig c = small_config();
  c.dirty_ring = 8;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  Page p[14];
  ASSERT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, cache, p, 14).value(), 14u);
  EXPECT_EQ(pool->free_pages(p, 14, kDev, cache), 14u);
  PoolStats s = pool->stats();
  EXPECT_EQ(s.free_dirty, 14u);
  EXPECT_EQ(s.cache_flushes, 6u);  // 8 in the ring, 6 spilled
  EXPECT_EQ(pool->audit(), "");
  pool->run_worker_once();
  s = pool->stats();
  EXPECT_EQ(s.free_dirty, 0u);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(pool->audit(), "");
}

// Cross-context traffic moves whole magazines: B frees what A allocated; A's refills then
// take B's full magazines (one refill per magazine), and the books stay exact.
TEST_F(PagePoolTest, FullMagazinesMoveFromTheFreeingCacheToTheAllocatingOne) {
  PoolConfig c = small_config();
  c.zero_policy = ZeroPolicy::on_free;
  c.cache_capacity = 4;  // magazines of 2 pages
  c.max_chunks = 1;
  c.high_pages = 16;
  auto pool = make(c);
  PageCache* a = pool->attach_cache().value();
  PageCache* b = pool->attach_cache().value();
  for (int round = 0; round < 50; ++round) {
    Page p[8];
    ASSERT_EQ(pool->alloc_pages(kGfpAtomicExclusive, kDev, a, p, 8).value(), 8u) << round;
    EXPECT_EQ(pool->free_pages(p, 8, kDev, b), 8u);
    ASSERT_EQ(pool->audit(), "") << round;
  }
  const PoolStats s = pool->stats();
  EXPECT_EQ(s.alloc_cache + s.alloc_depot + s.alloc_reserve, 400u);
  EXPECT_EQ(s.frees, 400u);
  EXPECT_GT(s.cache_flushes, 0u);  // B handed full magazines to the depot
  // A takes a whole magazine (2 pages) per refill once B's are there: about one refill
  // per two pages, never one per page.
  EXPECT_LE(s.cache_refills, 400u / 2 + 8);
  EXPECT_EQ(s.in_use, 0u);
  pool->detach_cache(a);
  pool->detach_cache(b);
  EXPECT_EQ(pool->audit(), "");
  EXPECT_EQ(pool->stats().free_clean, 16u);
}

// Chunks sit at fixed offsets of one reserved range: a removed chunk's addresses stay
// reserved (nothing else can be mapped there), and a chunk added again lands at the same
// host address.
TEST_F(PagePoolTest, RemovedChunkAddressesStayReservedAndAreReused) {
  PoolConfig c = small_config();
  c.high_pages = 8;
  auto pool = make(c);
  PageCache* cache = pool->attach_cache().value();
  // Grow to a second chunk (index 16..31) and note where it is mapped.
  auto take = [&](std::vector<Page>& held) {
    while (held.size() < 20) {
      if (auto p = pool->alloc_page(kGfpAtomicExclusive, kDev, cache)) {
        held.push_back(*p);
      } else {
        pool->run_worker_once();  // grows on failure
      }
    }
  };
  auto chunk1_base = [](const std::vector<Page>& held) -> std::byte* {
    for (const Page& p : held) {
      if (p.index >= 16 && p.index < 32) return p.host - uint64_t{p.index - 16} * kPageSize;
    }
    return nullptr;
  };
  std::vector<Page> held;
  take(held);
  std::byte* base = chunk1_base(held);
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(base, held[0].host - uint64_t{held[0].index} * kPageSize + (64 << 10));
  for (const Page& p : held) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  for (int i = 0; i < 8 && pool->stats().chunks > 1; ++i) pool->run_worker_once();
  ASSERT_EQ(pool->stats().chunks, 1u);
  ASSERT_GE(pool->stats().chunks_removed, 1u);
  void* probe =
      mmap(base, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT_EQ(probe, MAP_FAILED);
  EXPECT_EQ(errno, EEXIST);
  // Grown again: the chunk comes back at the same place.
  cache = pool->attach_cache().value();
  held.clear();
  take(held);
  EXPECT_EQ(chunk1_base(held), base);
  for (const Page& p : held) ASSERT_TRUE(pool->free_page(p, kDev, cache));
  pool->detach_cache(cache);
  pool->run_worker_once();
  EXPECT_EQ(pool->audit(), "");
}

}  // namespace
}  // namespace labyrinth::alloc

namespace labyrinth::alloc {
namespace {

TEST(PinnedRegion, PlacedInAReservationGoesBackToReservedOnRelease) {
  auto va = VaReservation::create(4 << 20, 2 << 20);
  ASSERT_TRUE(va);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(va->data()) % (2 << 20), 0u);
  std::byte* at = va->data() + (2 << 20);
  {
    auto r = PinnedRegion::create_at(at, 64 << 10, Backing::small_pages);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->data(), at);
    std::memset(at, 0x5A, 64 << 10);  // resident and writable
  }
  // Released: the range is reserved again (no one else can map there) ...
  void* probe = mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT_EQ(probe, MAP_FAILED);
  EXPECT_EQ(errno, EEXIST);
  // ... and a region placed there again starts from zeroed memory.
  auto again = PinnedRegion::create_at(at, 64 << 10, Backing::small_pages);
  ASSERT_TRUE(again);
  EXPECT_EQ(at[100], std::byte{0});
  EXPECT_EQ(PinnedRegion::create_at(at + 4096, 2 << 20, Backing::thp).error(), Error::bad_config);
}

TEST(PinnedRegion, PinsAndReleasesMemory) {
  auto r = PinnedRegion::create(64 << 10, Backing::small_pages);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 64u << 10);
  std::memset(r->data(), 0x5A, r->size());  // resident and writable
  PinnedRegion moved = std::move(*r);
  EXPECT_FALSE(*r);
  EXPECT_TRUE(moved);
}

TEST(PinnedRegion, ImpossibleRequestsFailWithTypedErrors) {
  EXPECT_EQ(PinnedRegion::create(0, Backing::small_pages).error(), Error::bad_config);
  EXPECT_EQ(PinnedRegion::create(1000, Backing::small_pages).error(), Error::bad_config);
  EXPECT_EQ(PinnedRegion::create(4096, Backing::thp).error(), Error::bad_config);  // < 2 MiB
  // More than the address space can hold: mmap fails, reported as pin_failed.
  EXPECT_EQ(PinnedRegion::create(1ull << 50, Backing::small_pages).error(), Error::pin_failed);
}

TEST(AllocError, EveryErrorHasAMessage) {
  // Every value of the underlying type, not a list of today's enumerators: an enumerator
  // added later is covered without touching this test (to_string's switch has no default,
  // so -Wswitch already refuses one without a case). The values that have a message must
  // be exactly the enumerators: contiguous from exhausted up to at least bad_cache, the
  // last one when this was written, and each message its own.
  using U = std::underlying_type_t<Error>;
  const std::string_view unknown = to_string(Error{});  // 0 is no enumerator
  std::set<std::string_view> messages;
  int last = 0;
  for (int e = 1; e <= std::numeric_limits<U>::max(); ++e) {
    const std::string_view m = to_string(static_cast<Error>(e));
    if (m == unknown) continue;
    EXPECT_EQ(e, last + 1) << "errors " << last + 1 << ".." << e - 1 << " have no message";
    EXPECT_TRUE(messages.insert(m).second) << "error " << e << " repeats \"" << m << "\"";
    last = e;
  }
  EXPECT_GE(last, static_cast<int>(Error::bad_cache));
  EXPECT_EQ(messages.size(), static_cast<size_t>(last));
}

}  // namespace
}  // namespace labyrinth::alloc
