// irq: end-to-end interrupt delivery. Routes IOAPIC pin LABYRINTH_IRQ_TEST_GSI
// to kVector, enables the LAPIC and interrupts, asks the VMM's irq test device
// for kCount interrupts (outl to LABYRINTH_PORT_IRQ_TEST) and sleeps in HLT
// until the handler has counted them all. Prints "irq: received N/N
// interrupts" and exits 0; exits 1 after kTimeoutMs with the count so far.
// A LAPIC timer tick (kTickVector, every kTickMs; one-shot re-armed by its
// handler, so it works even if the VMM did not set a CPUID that allows periodic
// mode) wakes the HLT loop, so the timeout is noticed even if the VMM never
// raises a single interrupt. The handler acks each interrupt
// (LABYRINTH_PORT_IRQ_TEST_ACK), so the device never raises an edge while the previous
// one is still pending and none can merge.
//
// Command line "user": the wait loop runs at CPL 3 (user.h), where CLI, STI and
// HLT are performed by the runtime's #GP entry; the guest first checks that
// interrupts stay blocked for 50 ms after CLI at CPL 3.
#include <atomic>

#include "guest/abi/ports.h"
#include "guest/runtime/interrupts.h"
#include "guest/runtime/ioapic.h"
#include "guest/runtime/lapic.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/tsc.h"
#include "guest/runtime/user.h"

namespace {

constexpr uint8_t kVector = 0x30;
constexpr uint8_t kTickVector = 0x31;
constexpr uint32_t kTickMs = 10;
constexpr uint32_t kCount = 10;
constexpr uint64_t kTimeoutMs = 5000;

// Written by the handler on CPU 0, read by CPU 0's main loop: only the
// compiler needs to be held off, relaxed suffices.
std::atomic<uint32_t> g_received{0};
uint64_t g_first_tsc = 0;
uint64_t g_last_tsc = 0;

void on_test_irq(guest::InterruptFrame&, void*) {
  const uint64_t now = guest::rdtsc();
  if (g_received.load(std::memory_order_relaxed) == 0) g_first_tsc = now;
  g_last_tsc = now;
  g_received.fetch_add(1, std::memory_order_relaxed);
  guest::outl(LABYRINTH_PORT_IRQ_TEST_ACK, 1);  // counted: the device may raise the next
  guest::lapic_eoi();
}

uint32_t g_tick_count = 0;  // LAPIC timer ticks per kTickMs, set before sti

void arm_tick() {
  guest::lapic_timer_start(kTickVector, g_tick_count, guest::TimerMode::kOneShot);
}

void on_tick(guest::InterruptFrame&, void*) {
  arm_tick();
  guest::lapic_eoi();
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  const char* cmdline = reinterpret_cast<const char*>(info.cmdline_gpa);
  const bool user = info.cmdline_len == 4 && __builtin_memcmp(cmdline, "user", 4) == 0;

  if (!guest::irq_register(kVector, on_test_irq, nullptr) ||
      !guest::irq_register(kTickVector, on_tick, nullptr)) {
    guest::printf("irq: FAIL: cannot register vectors 0x%x/0x%x\n", kVector, kTickVector);
    return guest::kExitFail;
  }
  guest::lapic_enable();
  const uint32_t ticks_per_ms = guest::lapic_timer_ticks_per_ms();
  g_tick_count = ticks_per_ms != 0 ? ticks_per_ms * kTickMs : 1000000;
  arm_tick();
  if (!guest::ioapic_route(LABYRINTH_IRQ_TEST_GSI, kVector)) {
    guest::printf("irq: FAIL: IOAPIC has only %u pins, need pin %u\n", guest::ioapic_num_pins(),
                  LABYRINTH_IRQ_TEST_GSI);
    return guest::kExitFail;
  }
  guest::printf(
      "irq: gsi %u -> vector 0x%x on apic %u, lapic timer %u ticks/ms, "
      "requesting %u interrupts\n",
      LABYRINTH_IRQ_TEST_GSI, kVector, guest::lapic_id(), ticks_per_ms, kCount);
  if (user) {
    if (!guest::enter_user_mode()) return guest::kExitFail;
    guest::cli();
    guest::outl(LABYRINTH_PORT_IRQ_TEST, kCount);
    guest::mdelay(50);
    const uint32_t early = g_received.load(std::memory_order_relaxed);
    guest::printf("irq: at cpl %u; %u interrupts taken in 50 ms after cli (want 0)\n", guest::cpl(),
                  early);
    if (early != 0) return guest::kExitFail;
    guest::sti();
  } else {
    guest::sti();
    guest::outl(LABYRINTH_PORT_IRQ_TEST, kCount);
  }

  const uint64_t deadline = guest::tsc_deadline_ms(kTimeoutMs);
  for (;;) {
    guest::cli();
    if (g_received.load(std::memory_order_relaxed) >= kCount) break;
    if (guest::tsc_passed(deadline)) {
      const uint32_t received = g_received.load(std::memory_order_relaxed);
      guest::printf(
          "irq: FAIL: received %u/%u interrupts after %lu ms (the host says it "
          "raised %u)\n",
          received, kCount, kTimeoutMs, guest::inl(LABYRINTH_PORT_IRQ_TEST));
      guest::lapic_timer_stop();
      return guest::kExitFail;
    }
    // Sleeps until the next interrupt (test IRQ or timer tick). Checking the
    // count with IF = 0 and re-enabling it in STI's shadow means no interrupt
    // is missed in between.
    guest::sti_hlt();
  }
  guest::lapic_timer_stop();
  guest::printf("irq: received %u/%u interrupts (first to last: %lu us)\n",
                g_received.load(std::memory_order_relaxed), kCount,
                guest::tsc_to_us(g_last_tsc - g_first_tsc));
  return guest::kExitPass;
}
