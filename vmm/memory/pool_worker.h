// vmm/memory/pool_worker.h — the VMM's thread for the page pool's background work.
//
// The pool can run its own worker (PoolConfig::start_worker) or let the caller drive
// PagePool::run_worker_once(). The VMM drives it from a thread it owns, so that the
// thread can confine itself first (its seccomp filter, vmm/sandbox/seccomp.h): a thread
// the pool starts runs nothing of the VMM's before its first pass.
//
//   alloc::PoolConfig pc;  pc.start_worker = false;  ...
//   auto pool = alloc::PagePool::create(pc, sink).value();
//   PoolWorker worker(*pool, pc.worker_poll, [] { /* install the filter */ });
//   ...                                  // ~PoolWorker stops and joins before the pool goes
//
// The loop repeats the pool's own: a pass, then another at once while passes make
// progress (pages zeroed, chunks added or removed), else a sleep of worker_poll. What
// the pool's own worker has in addition — a wake-up from a non-atomic allocation that
// waits — such an allocation gets at the next poll (<= worker_poll later; it waits in
// 1 ms slices anyway).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "allocator/page_pool.h"

namespace labyrinth::vmm {

class PoolWorker {
 public:
  // Starts the thread: thread_init() (may be empty), then passes until destruction.
  // Throws std::system_error if no thread can be started (caught by the caller).
  PoolWorker(alloc::PagePool& pool, std::chrono::microseconds poll,
             std::function<void()> thread_init);
  ~PoolWorker();
  PoolWorker(const PoolWorker&) = delete;
  PoolWorker& operator=(const PoolWorker&) = delete;

 private:
  void loop();

  alloc::PagePool& pool_;
  const std::chrono::microseconds poll_;
  std::function<void()> thread_init_;
  std::mutex mu_;  // guards stop_ (leaf lock)
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace labyrinth::vmm
