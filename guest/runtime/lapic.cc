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
constexpr uint32_t kRegLvtLint0 = 0x350;
constexpr uint32_t kRegLvtLint1 = 0x360;
constexpr uint32_t kRegLvtError = 0x370;
constexpr uint32_t kRegLvtTimer = 0x320;
constexpr uint32_t kRegTimerInitial = 0x380;
constexpr uint32_t kRegTimerCurrent = 0x390;
constexpr uint32_t kRegTimerDivide = 0x3E0;

constexpr uint32_t kSvrEnable = 1u << 8;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kLvtDeliveryNmi = 4u << 8;
constexpr uint32_t kDivideBy16 = 0x3;

uint32_t read(uint32_t reg) {
  return mmio_read32(kBase + reg);
}
void write(uint32_t reg, uint32_t value) {
  mmio_write32(kBase + reg, value);
}

}  // namespace

void lapic_enable() {
  // KVM resets the boot CPU's LINT0 to ExtINT (virtual-wire mode): the 8259 PIC,
  // which shares GSIs 0-15 with the IOAPIC and whose vector base is 0 until
  // programmed, would deliver IOAPIC pin 5 as vector 5 as well. Mask it.
  write(kRegLvtLint0, kLvtMasked);
  write(kRegLvtLint1, kLvtDeliveryNmi);
  write(kRegLvtError, kLvtMasked);
  write(kRegTpr, 0);
  write(kRegSvr, kSvrEnable | kSpuriousVector);
}

uint32_t lapic_id() {
  return read(kRegId) >> 24;
}

void lapic_eoi() {
  write(kRegEoi, 0);
}

bool lapic_timer_start(uint8_t vector, uint32_t initial_count, TimerMode mode) {
  constexpr uint32_t kModeBits = 3u << 17;
  const uint32_t lvt = static_cast<uint32_t>(mode) | vector;
  write(kRegTimerDivide, kDivideBy16);
  write(kRegLvtTimer, lvt);
  if ((read(kRegLvtTimer) & kModeBits) != static_cast<uint32_t>(mode)) {
    write(kRegLvtTimer, kLvtMasked);
    return false;
  }
  write(kRegTimerInitial, initial_count);  // writing the count starts the timer
  return true;
}

void lapic_timer_stop() {
  write(kRegLvtTimer, kLvtMasked);
  write(kRegTimerInitial, 0);
}

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
