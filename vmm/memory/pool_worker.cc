#include "vmm/memory/pool_worker.h"

#include <utility>

namespace labyrinth::vmm {

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
