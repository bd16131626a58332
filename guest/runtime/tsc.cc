// TSC frequency and busy-wait delays. See tsc.h.
#include "guest/runtime/tsc.h"

namespace guest {
namespace {

uint64_t g_tsc_khz = kFallbackTscKhz;  // written once by the boot CPU before APs run

}  // namespace

void tsc_init(uint64_t khz) {
  g_tsc_khz = khz != 0 ? khz : kFallbackTscKhz;
}

uint64_t tsc_khz() {
  return g_tsc_khz;
}

void udelay(uint64_t us) {
  const uint64_t deadline = tsc_deadline_us(us);
  while (!tsc_passed(deadline)) pause();
}

void mdelay(uint64_t ms) {
  udelay(ms * 1000);
}

}  // namespace guest
