// Thin wrappers around the x86-64 instructions the runtime needs: port I/O,
// MMIO accesses, interrupt flag control, HLT, PAUSE, RDTSC and CR2.
//
//   guest::outl(LABYRINTH_PORT_EXIT, 0);
//   uint64_t t = guest::rdtsc();
//
// Everything is inline and header-only. Port I/O and HLT cause VM exits (cheap
// enough); never add page-table or descriptor-table edits here: on the nested
// PVM host those trap and are very costly.
#pragma once

#include <stdint.h>

namespace guest {

inline void outb(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline void outl(uint16_t port, uint32_t value) {
  asm volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline uint8_t inb(uint16_t port) {
  uint8_t value;
  asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
  return value;
}

inline uint32_t inl(uint16_t port) {
  uint32_t value;
  asm volatile("inl %1, %0" : "=a"(value) : "Nd"(port) : "memory");
  return value;
}

// 32-bit MMIO (LAPIC, IOAPIC registers must be accessed as whole dwords).
inline uint32_t mmio_read32(uint64_t addr) {
  return *reinterpret_cast<volatile uint32_t*>(addr);
}

inline void mmio_write32(uint64_t addr, uint32_t value) {
  *reinterpret_cast<volatile uint32_t*>(addr) = value;
}

inline void cli() { asm volatile("cli" : : : "memory"); }
inline void sti() { asm volatile("sti" : : : "memory"); }
inline void hlt() { asm volatile("hlt" : : : "memory"); }
inline void pause() { asm volatile("pause" : : : "memory"); }

// STI's one-instruction interrupt shadow makes "sti; hlt" atomic: an interrupt
// that became pending while IF was 0 wakes the HLT instead of being missed.
inline void sti_hlt() { asm volatile("sti; hlt" : : : "memory"); }

inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline uint64_t read_cr2() {
  uint64_t value;
  asm volatile("mov %%cr2, %0" : "=r"(value));
  return value;
}

inline uint64_t read_rflags() {
  uint64_t value;
  asm volatile("pushfq; popq %0" : "=r"(value));
  return value;
}

inline bool interrupts_enabled() { return (read_rflags() & (1u << 9)) != 0; }

// Stop this CPU for good: interrupts off, HLT in a loop (NMIs may wake it).
[[noreturn]] inline void halt_forever() {
  for (;;) asm volatile("cli; hlt" : : : "memory");
}

}  // namespace guest
