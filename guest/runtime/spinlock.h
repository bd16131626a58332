// A test-and-test-and-set spinlock for guest code, recording its owner.
//
//   guest::SpinLock lock;
//   { guest::SpinLockGuard g(lock); ... }
//
// The owner (vCPU index + 1, 0 = free) lets the exception path notice that the
// faulting CPU already holds the lock (e.g. it faulted inside printf) and avoid
// deadlocking on itself. Not reentrant otherwise; does not touch IF, so a lock
// also taken from an interrupt handler must be held with interrupts disabled.
//
// Memory order: the acquiring compare-exchange (acquire) pairs with the release
// store in unlock(), so writes made under the lock are visible to the next holder.
#pragma once

#include <stdint.h>
#include <atomic>

#include "guest/runtime/cpu.h"

namespace guest {

unsigned this_cpu();  // runtime.h

class SpinLock {
 public:
  void lock() {
    const uint32_t me = this_cpu() + 1;
    for (;;) {
      uint32_t expected = 0;
      if (owner_.compare_exchange_weak(expected, me, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      while (owner_.load(std::memory_order_relaxed) != 0) pause();
    }
  }

  void unlock() { owner_.store(0, std::memory_order_release); }

  bool held_by_me() const { return owner_.load(std::memory_order_relaxed) == this_cpu() + 1; }

 private:
  std::atomic<uint32_t> owner_{0};
};

class SpinLockGuard {
 public:
  explicit SpinLockGuard(SpinLock& lock) : lock_(lock) { lock_.lock(); }
  ~SpinLockGuard() { lock_.unlock(); }
  SpinLockGuard(const SpinLockGuard&) = delete;
  SpinLockGuard& operator=(const SpinLockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace guest
