// smp: every vCPU reports in. Each prints "cpu N online (apic id A)" and bumps
// a shared counter; CPU 0 waits up to kTimeoutMs for all num_cpus, then prints
// "smp: all N cpus online" and exits 0, or exits 1 naming the count it saw.
#include <atomic>

#include "guest/runtime/lapic.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/tsc.h"

namespace {

constexpr uint64_t kTimeoutMs = 5000;

// fetch_add (release) pairs with CPU 0's acquire load: seeing the count means
// seeing the reporting CPU's earlier writes.
std::atomic<uint32_t> g_online{0};

void report_online(unsigned cpu) {
  guest::printf("cpu %u online (apic id %u)\n", cpu, guest::lapic_id());
  g_online.fetch_add(1, std::memory_order_release);
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  report_online(cpu);
  if (cpu != 0) guest::halt_forever();

  const uint64_t deadline = guest::tsc_deadline_ms(kTimeoutMs);
  while (g_online.load(std::memory_order_acquire) < info.num_cpus) {
    if (guest::tsc_passed(deadline)) {
      guest::printf("smp: FAIL: only %u of %u cpus online after %lu ms\n",
                    g_online.load(std::memory_order_acquire), info.num_cpus, kTimeoutMs);
      return guest::kExitFail;
    }
    guest::pause();
  }
  guest::printf("smp: all %u cpus online\n", info.num_cpus);
  return guest::kExitPass;
}
