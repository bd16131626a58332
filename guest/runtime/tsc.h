// Time from the TSC, scaled by the boot info's tsc_khz.
//
//   const uint64_t deadline = guest::tsc_deadline_ms(5000);
//   while (!done && !guest::tsc_passed(deadline)) guest::pause();
//
// tsc_init() runs in start.cc; a tsc_khz of 0 in the boot info is reported and
// replaced by kFallbackTscKhz so timeouts still end (just not accurately).
#pragma once

#include <stdint.h>

#include "guest/runtime/cpu.h"

namespace guest {

inline constexpr uint64_t kFallbackTscKhz = 1000000;  // 1 GHz

void tsc_init(uint64_t tsc_khz);
uint64_t tsc_khz();

inline uint64_t tsc_deadline_us(uint64_t us) {
  return rdtsc() + us * tsc_khz() / 1000;
}
inline uint64_t tsc_deadline_ms(uint64_t ms) {
  return rdtsc() + ms * tsc_khz();
}
inline bool tsc_passed(uint64_t deadline) {
  return static_cast<int64_t>(rdtsc() - deadline) >= 0;
}
inline uint64_t tsc_to_us(uint64_t ticks) {
  return ticks * 1000 / tsc_khz();
}

void udelay(uint64_t us);  // busy-waits with PAUSE
void mdelay(uint64_t ms);

}  // namespace guest
