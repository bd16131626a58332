// pool_config (vmm/memory/pool_worker.h): the pool a configuration asks for, and the
// worker's idle period that follows whether anything can allocate from it (issue 19).
#include <gtest/gtest.h>

#include "vmm/memory/pool_worker.h"

namespace labyrinth::vmm {
namespace {

TEST(PoolConfig, WithoutAnLnicTheWorkerDoesNotPoll) {
  Config c;
  const alloc::PoolConfig pc = pool_config(c);
  EXPECT_EQ(pc.worker_poll, kIdlePoolPoll);
  EXPECT_GE(pc.worker_poll, std::chrono::milliseconds(1000));
  EXPECT_FALSE(pc.start_worker);
}

TEST(PoolConfig, AnLnicKeepsThePollThatItsAtomicPathNeeds) {
  Config c;
  c.lnics.emplace_back();
  const alloc::PoolConfig pc = pool_config(c);
  EXPECT_EQ(pc.worker_poll, alloc::PoolConfig{}.worker_poll);
  EXPECT_LT(pc.worker_poll, std::chrono::milliseconds(1));
}

TEST(PoolConfig, CarriesTheConfiguredPoolAndWindow) {
  Config c;
  c.pool.chunk_size_kib = 4096;
  c.pool.initial_chunks = 3;
  c.pool.max_chunks = 7;
  c.pool.min_pages = 10;
  c.pool.low_pages = 20;
  c.pool.high_pages = 30;
  c.layout.pool.gpa = uint64_t{5} << 30;
  c.layout.pool.size = uint64_t{1} << 30;
  const alloc::PoolConfig pc = pool_config(c);
  EXPECT_EQ(pc.chunk_bytes, uint64_t{4096} * 1024);
  EXPECT_EQ(pc.initial_chunks, 3u);
  EXPECT_EQ(pc.max_chunks, 7u);
  EXPECT_EQ(pc.min_pages, 10u);
  EXPECT_EQ(pc.low_pages, 20u);
  EXPECT_EQ(pc.high_pages, 30u);
  EXPECT_EQ(pc.window_gpa, uint64_t{5} << 30);
  EXPECT_EQ(pc.window_size, uint64_t{1} << 30);
}

}  // namespace
}  // namespace labyrinth::vmm
