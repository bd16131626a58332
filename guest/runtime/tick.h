// A periodic wake-up for HLT loops: the LAPIC timer in one-shot mode, re-armed by
// its own handler (one-shot works whatever CPUID the VMM set; periodic may not,
// see lapic.h). Programs that sleep in HLT use it so deadlines are noticed even
// when no device interrupt ever arrives.
//
//   guest::lapic_enable();
//   if (!guest::tick_start(guest::kTickVector, 10)) ...   // every 10 ms, CPU 0 only
//   for (;;) { guest::cli(); if (done()) break; guest::sti_hlt(); }
//   guest::tick_stop();
//
// Each tick costs a timer interrupt, the EOI and the re-arm (a few VM exits).
#pragma once

#include <stdint.h>

namespace guest {

inline constexpr uint8_t kTickVector = 0x3F;

// Calibrates the LAPIC timer (~10 ms busy wait, first call only), registers the
// handler on `vector` (first call only) and arms the first tick. False if the
// vector cannot be registered.
bool tick_start(uint8_t vector, uint32_t period_ms);
void tick_stop();
uint64_t tick_count();

}  // namespace guest
