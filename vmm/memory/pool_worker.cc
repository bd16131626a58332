#include "vmm/memory/pool_worker.h"

#include <utility>

namespace labyrinth::vmm {

namespace {

// Work the passes did: changes while there is more to do.
uint64_t progress(const alloc::PagePool& pool) {
  const alloc::PoolStats s = pool.stats();
  return s.pages_zeroed + s.chunks_added + s.chunks_removed;
}

}  // namespace

PoolWorker::PoolWorker(alloc::PagePool& pool, std::chrono::microseconds poll,
                       std::function<void()> thread_init)
    : pool_(pool), poll_(poll), thread_init_(std::move(thread_init)), thread_([this] { loop(); }) {}

PoolWorker::~PoolWorker() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PoolWorker::loop() {
  if (thread_init_) thread_init_();
  for (;;) {
    const uint64_t before = progress(pool_);
    pool_.run_worker_once();
    const bool busy = progress(pool_) != before;
    std::unique_lock lock(mu_);
    if (stop_) return;
    if (busy) continue;
    // The atomic path makes no system calls, so it cannot wake us: poll (as the pool does).
    if (cv_.wait_for(lock, poll_, [this] { return stop_; })) return;
  }
}

}  // namespace labyrinth::vmm
