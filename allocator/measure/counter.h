// allocator/measure/counter.h — the one event counter of the tree.
//
//   measure::Counter frames;
//   frames.inc();          // owner thread: a relaxed load + store, no locked instruction
//   errors.inc_shared();   // any thread: a relaxed fetch_add (rare paths only)
//   frames.get();          // any thread: a relaxed load, atomic per counter
//
// Data-path counters have one writer (the device event loop, the pool's owner of a
// cache): a locked read-modify-write would cost ~20 cycles on every frame for nothing.
// Counters written from several threads (violations, register accesses, worker events)
// use inc_shared(). A snapshot of several counters is consistent per counter, not across
// them.
#pragma once

#include <atomic>
#include <cstdint>

namespace labyrinth::measure {

struct Counter {
  std::atomic<uint64_t> v{0};

  void inc(uint64_t n = 1) noexcept {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void inc_shared(uint64_t n = 1) noexcept { v.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

}  // namespace labyrinth::measure
