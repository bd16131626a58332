// allocator/measure/tsc.h — cycle timestamps for latency measurement.
//
//   const TscClock& clock = TscClock::instance();   // calibrated once (~50 ms)
//   uint64_t t0 = rdtsc_ordered(); work(); uint64_t t1 = rdtsc_ordered();
//   double ns = clock.to_ns(t1 - t0);
//
// The machine's TSC is invariant (constant rate, synchronised across cores), and KVM
// gives the guest the same TSC plus a known offset, so host and guest stamps compare.
#pragma once

#include <cmath>
#include <cstdint>

namespace labyrinth::measure {

// rdtsc fenced so that it is not reordered with the measured work (lfence before and after).
inline uint64_t rdtsc_ordered() noexcept {
  uint32_t lo, hi;
  asm volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
  return (uint64_t{hi} << 32) | lo;
}

inline uint64_t rdtsc() noexcept {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t{hi} << 32) | lo;
}

class TscClock {
 public:
  static const TscClock& instance();  // calibrates on first use (setup path only)
  double ticks_per_ns() const { return ticks_per_ns_; }
  uint64_t khz() const { return static_cast<uint64_t>(std::llround(ticks_per_ns_ * 1e6)); }
  double to_ns(uint64_t ticks) const { return static_cast<double>(ticks) / ticks_per_ns_; }
  uint64_t from_ns(double ns) const { return static_cast<uint64_t>(ns * ticks_per_ns_); }
  // Calibrates against CLOCK_MONOTONIC_RAW over `ms` milliseconds.
  static double calibrate(unsigned ms);

 private:
  TscClock();
  double ticks_per_ns_;
};

}  // namespace labyrinth::measure
