// xAPIC register access. See lapic.h.
#include "guest/runtime/lapic.h"

#include "guest/abi/boot_info.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/interrupts.h"
#include "guest/runtime/tsc.h"

namespace guest {
namespace {

constexpr uint64_t kBase = LABYRINTH_LAPIC_GPA;
constexpr uint32_t kRegId = 0x020;
constexpr uint32_t kRegTpr = 0x080;
constexpr uint32_t kRegEoi = 0x0B0;
constexpr uint32_t kRegSvr = 0x0F0;
constexpr uint32_t kRegLvtTimer = 0x320;
constexpr uint32_t kRegTimerInitial = 0x380;
constexpr uint32_t kRegTimerCurrent = 0x390;
constexpr uint32_t kRegTimerDivide = 0x3E0;

constexpr uint32_t kSvrEnable = 1u << 8;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kDivideBy16 = 0x3;

uint32_t read(uint32_t reg) { return mmio_read32(kBase + reg); }
void write(uint32_t reg, uint32_t value) { mmio_write32(kBase + reg, value); }

}  // namespace

void lapic_enable() {
  write(kRegTpr, 0);
  write(kRegSvr, kSvrEnable | kSpuriousVector);
}

uint32_t lapic_id() { return read(kRegId) >> 24; }

void lapic_eoi() { write(kRegEoi, 0); }

void lapic_timer_start(uint8_t vector, uint32_t initial_count, TimerMode mode) {
  write(kRegTimerDivide, kDivideBy16);
  write(kRegLvtTimer, static_cast<uint32_t>(mode) | vector);
  write(kRegTimerInitial, initial_count);  // writing the count starts the timer
}

void lapic_timer_stop() {
  write(kRegLvtTimer, kLvtMasked);
  write(kRegTimerInitial, 0);
}

uint32_t lapic_timer_current() { return read(kRegTimerCurrent); }

uint32_t lapic_timer_ticks_per_ms() {
  constexpr uint32_t kStart = 0xFFFFFFFFu;
  constexpr uint32_t kMs = 10;
  write(kRegTimerDivide, kDivideBy16);
  write(kRegLvtTimer, kLvtMasked);  // count down without interrupting
  write(kRegTimerInitial, kStart);
  mdelay(kMs);
  const uint32_t elapsed = kStart - read(kRegTimerCurrent);
  lapic_timer_stop();
  return elapsed / kMs;
}

}  // namespace guest
