#include "allocator/measure/tsc.h"

#include <time.h>

#include <algorithm>
#include <array>

namespace labyrinth::measure {

namespace {
uint64_t mono_ns() {
  timespec ts{};
  if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0) return 0;  // cannot fail on Linux
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

double TscClock::calibrate(unsigned ms) {
  // Median of five windows: one preemption in a window cannot skew the result.
  std::array<double, 5> rates{};
  for (double& r : rates) {
    const uint64_t n0 = mono_ns();
    const uint64_t t0 = rdtsc_ordered();
    const uint64_t target = n0 + uint64_t{ms} * 1'000'000ull / rates.size();
    uint64_t n1 = n0;
    while (n1 < target) n1 = mono_ns();
    const uint64_t t1 = rdtsc_ordered();
    r = static_cast<double>(t1 - t0) / static_cast<double>(n1 - n0);
  }
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

TscClock::TscClock() : ticks_per_ns_(calibrate(50)) {}

const TscClock& TscClock::instance() {
  static const TscClock clock;
  return clock;
}

}  // namespace labyrinth::measure
