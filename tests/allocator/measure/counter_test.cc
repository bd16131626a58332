// The one counter (allocator/measure/counter.h): a single writer's inc() and many
// writers' inc_shared() both lose nothing, and a reader on another thread sees the
// counter move while its writer runs.
#include "allocator/measure/counter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace labyrinth::measure {
namespace {

TEST(Counter, SingleWriterCountsEveryIncrement) {
  Counter c;
  for (int i = 0; i < 1000; ++i) c.inc();
  c.inc(24);
  EXPECT_EQ(c.get(), 1024u);
}

TEST(Counter, SharedWritersLoseNothing) {
  Counter c;
  constexpr int kThreads = 4, kEach = 100000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) c.inc_shared();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.get(), uint64_t{kThreads} * kEach);
}

TEST(Counter, ReaderOnAnotherThreadSeesTheWriterProgress) {
  Counter c;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop.load(std::memory_order_relaxed)) c.inc();
  });
  // Wait on the condition itself: the reader must see the count pass a value the
  // writer can only reach by running.
  while (c.get() < 100000) std::this_thread::yield();
  stop = true;
  writer.join();
  const uint64_t last = c.get();
  EXPECT_GE(last, 100000u);
  EXPECT_EQ(c.get(), last);  // no writer left: the value stays
}

}  // namespace
}  // namespace labyrinth::measure
