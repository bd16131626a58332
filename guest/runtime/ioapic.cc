// I/O APIC register access through the IOREGSEL/IOWIN window. See ioapic.h.
#include "guest/runtime/ioapic.h"

#include "guest/abi/boot_info.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/spinlock.h"

namespace guest {
namespace {

constexpr uint64_t kRegSel = LABYRINTH_IOAPIC_GPA + 0x00;
constexpr uint64_t kWindow = LABYRINTH_IOAPIC_GPA + 0x10;
constexpr uint32_t kRegVersion = 0x01;
constexpr uint32_t kRegRedirBase = 0x10;  // entry n: low dword 0x10 + 2n, high 0x11 + 2n

constexpr uint32_t kMasked = 1u << 16;
// Fixed delivery (bits 10:8 = 0), physical destination (bit 11 = 0), active high
// (bit 13 = 0), edge triggered (bit 15 = 0), unmasked (bit 16 = 0).
constexpr uint32_t kFixedEdgeHigh = 0;

// IOREGSEL/IOWIN is a two-step access; the lock keeps CPUs from mixing them.
SpinLock g_lock;

uint32_t read(uint32_t reg) {
  mmio_write32(kRegSel, reg);
  return mmio_read32(kWindow);
}

void write(uint32_t reg, uint32_t value) {
  mmio_write32(kRegSel, reg);
  mmio_write32(kWindow, value);
}

}  // namespace

uint32_t ioapic_num_pins() {
  SpinLockGuard guard(g_lock);
  return ((read(kRegVersion) >> 16) & 0xFF) + 1;
}

bool ioapic_route(uint32_t pin, uint8_t vector, uint8_t dest_apic_id) {
  if (pin >= ioapic_num_pins()) return false;
  SpinLockGuard guard(g_lock);
  const uint32_t reg = kRegRedirBase + 2 * pin;
  write(reg, kMasked);  // mask while the entry is half written
  write(reg + 1, static_cast<uint32_t>(dest_apic_id) << 24);
  write(reg, kFixedEdgeHigh | vector);
  return true;
}

}  // namespace guest
