// guest/drivers/lnic/lnic_wait.h — the driver's bounded wait for the device (internal).
#pragma once

#include <stdint.h>

#include "guest/runtime/cpu.h"
#include "guest/runtime/tsc.h"

namespace guest::lnic {

// Spins until ready() or stall_ms pass. The device is a thread of the host's VMM
// that may go unscheduled for a long while, hence the generous bound; RDTSC is an
// exit on the nested host, hence the clock read on every 64th spin only.
template <typename Ready>
bool wait_for_device(uint64_t stall_ms, Ready ready) {
  const uint64_t deadline = tsc_deadline_ms(stall_ms);
  for (uint32_t spin = 1;; ++spin) {
    if (ready()) return true;
    pause();
    if (spin % 64 == 0 && tsc_passed(deadline)) return false;
  }
}

}  // namespace guest::lnic
