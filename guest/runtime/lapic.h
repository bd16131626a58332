// Local APIC in xAPIC mode (MMIO at LABYRINTH_LAPIC_GPA = 0xFEE00000).
//
//   guest::lapic_enable();   // SVR: enable, spurious vector 0xFF; LINT0 (PIC) masked
//   guest::lapic_timer_start(0x40, 100000, guest::TimerMode::kPeriodic);
//   ... in the handler: guest::lapic_eoi();
//
// Every vCPU has its own LAPIC at the same address; these functions act on the
// calling CPU's. The VMM's in-kernel irqchip emulates it (xAPIC, enabled at
// reset). Timer counts are in bus-clock ticks divided by 16 (the divider
// programmed here); lapic_timer_ticks_per_ms() measures that against the TSC.
#pragma once

#include <stdint.h>

namespace guest {

enum class TimerMode : uint32_t {
  kOneShot = 0,
  kPeriodic = 1u << 17,
};

// Software-enables the LAPIC (TPR = 0, spurious vector kSpuriousVector) and masks
// LINT0, so the legacy 8259 PIC cannot inject its (unprogrammed, vector 0-15)
// interrupts; external interrupts then arrive only through the IOAPIC.
void lapic_enable();
uint32_t lapic_id();  // this CPU's APIC ID (bits 31:24 of the ID register)
void lapic_eoi();     // end of interrupt for the in-service vector
// Starts the timer. Returns false if the LAPIC refused the mode: KVM only lets
// the periodic bit be set once the VMM has done KVM_SET_CPUID2 (it derives the
// writable timer-mode bits from the guest CPUID); one-shot always works.
bool lapic_timer_start(uint8_t vector, uint32_t initial_count, TimerMode mode);
void lapic_timer_stop();
uint32_t lapic_timer_ticks_per_ms();  // busy-waits ~10 ms against the TSC

}  // namespace guest
