#include "vmm/memory/pool_worker.h"

#include <utility>

namespace labyrinth::vmm {

alloc::PoolConfig pool_config(const Config& config) {
  const PoolSettings& p = config.pool;
  alloc::PoolConfig pc;
  pc.window_gpa = config.layout.pool.gpa;
  pc.window_size = config.layout.pool.size;
  pc.chunk_bytes = uint64_t{p.chunk_size_kib} * kKiB;
  pc.initial_chunks = p.initial_chunks;
  pc.max_chunks = p.max_chunks;
  pc.min_pages = p.min_pages;
  pc.low_pages = p.low_pages;
  pc.high_pages = p.high_pages;
  pc.backing = p.backing;
  pc.zero_policy = p.zero_policy;
  pc.start_worker = false;  // PoolWorker drives it
  if (config.lnics.empty()) pc.worker_poll = kIdlePoolPoll;
  return pc;
}

PoolWorker::PoolWorker(alloc::PagePool& pool, std::function<void()> thread_init)
    : pool_(pool), thread_init_(std::move(thread_init)), thread_([this] {
        if (thread_init_) thread_init_();  // confine the thread before the pool's code runs
        pool_.run_worker();
      }) {}

PoolWorker::~PoolWorker() {
  pool_.stop_worker();
  thread_.join();
}

}  // namespace labyrinth::vmm
