// vmm/memory/pool_worker.h — the VMM's thread for the page pool's background work.
//
// The pool can run its own worker (PoolConfig::start_worker) or let the caller run it:
// PagePool::run_worker() is the same loop on the caller's thread. The VMM runs it on a
// thread it owns, so that the thread can confine itself first (its seccomp filter,
// vmm/sandbox/seccomp.h): a thread the pool starts runs nothing of the VMM's before its
// first pass.
//
//   alloc::PoolConfig pc;  pc.start_worker = false;  ...
//   auto pool = alloc::PagePool::create(pc, sink).value();
//   PoolWorker worker(*pool, [] { /* install the filter */ });
//   ...                                  // ~PoolWorker stops and joins before the pool goes
#pragma once

#include <chrono>
#include <functional>
#include <thread>

#include "allocator/page_pool.h"
#include "vmm/config/config.h"

namespace labyrinth::vmm {

// The pool a VM's configuration asks for (labyrinth.pool, the layout's pool window),
// with start_worker false (PoolWorker runs it). The worker's idle period follows the
// VM's pool users: the lnics allocate on their interrupt paths, which may not wake the
// worker, so with an lnic it polls every PoolConfig::worker_poll (500 us); without
// one nothing allocates from the pool, and a 2 kHz wake-up for the VM's whole life is
// work a microVM does not do (issue 19: on a one-CPU host it takes turns with the
// vCPU). Then it wakes once a second (kIdlePoolPoll) and at stop.
inline constexpr std::chrono::microseconds kIdlePoolPoll{1'000'000};
alloc::PoolConfig pool_config(const Config& config);

class PoolWorker {
 public:
  // Starts the thread: thread_init() (may be empty), then pool.run_worker() until
  // destruction. Throws std::system_error if no thread can be started (caught by the
  // caller).
  PoolWorker(alloc::PagePool& pool, std::function<void()> thread_init);
  ~PoolWorker();
  PoolWorker(const PoolWorker&) = delete;
  PoolWorker& operator=(const PoolWorker&) = delete;

 private:
  alloc::PagePool& pool_;
  std::function<void()> thread_init_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace labyrinth::vmm
