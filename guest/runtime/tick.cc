// LAPIC one-shot tick, re-armed by its handler. See tick.h.
#include "guest/runtime/tick.h"

#include "guest/runtime/interrupts.h"
#include "guest/runtime/lapic.h"

namespace guest {
namespace {

// Written by CPU 0 in thread context with interrupts off, or by CPU 0's handler.
uint8_t g_vector = 0;
uint32_t g_count = 0;  // LAPIC timer counts per period
bool g_running = false;
volatile uint64_t g_ticks = 0;

void arm() {
  lapic_timer_start(g_vector, g_count, TimerMode::kOneShot);
}

void on_tick(InterruptFrame&, void*) {
  g_ticks = g_ticks + 1;
  if (g_running) arm();
  lapic_eoi();
}

}  // namespace

bool tick_start(uint8_t vector, uint32_t period_ms) {
  if (g_vector == 0) {
    if (!irq_register(vector, on_tick, nullptr)) return false;
    g_vector = vector;
  } else if (vector != g_vector) {
    return false;
  }
  static uint32_t ticks_per_ms = 0;
  if (ticks_per_ms == 0) ticks_per_ms = lapic_timer_ticks_per_ms();
  if (ticks_per_ms == 0) ticks_per_ms = 100000;  // a timer that does not count: guess
  g_count = ticks_per_ms * (period_ms != 0 ? period_ms : 1);
  g_running = true;
  arm();
  return true;
}

void tick_stop() {
  g_running = false;
  lapic_timer_stop();
}

uint64_t tick_count() {
  return g_ticks;
}

}  // namespace guest
