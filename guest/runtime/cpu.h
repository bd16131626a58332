// Thin wrappers around the x86-64 instructions the runtime needs: port I/O,
// MMIO accesses, interrupt flag control, HLT, PAUSE, RDTSC and CR2.
//
//   guest::outl(LABYRINTH_PORT_EXIT, 0);
//   uint64_t t = guest::rdtsc();
//
// Everything is inline and header-only. Port I/O and HLT cause VM exits (cheap
// enough); never add page-table or descriptor-table edits here: on the nested
// PVM host those trap and are very costly.
//
// CPL 3 (user.h): the same functions work there. IN/OUT, CLI, STI and HLT raise
// #GP at CPL 3 on the nested host (it ignores IOPL 3), and the runtime's #GP
// entry (user.S) performs them at CPL 0 and resumes after them; "sti; hlt" is
// recognised as one unit, so it stays atomic. Port I/O therefore always uses
// the DX forms, which is all that entry decodes. read_cr2() is CPL 0 only.
#pragma once

#include <stdint.h>

namespace guest {

// Current privilege level (CS.RPL): 0 during boot, 3 after enter_user_mode().
inline unsigned cpl() {
  uint16_t cs;
  asm volatile("mov %%cs, %0" : "=r"(cs));
  return cs & 3u;
}

inline void outb(uint16_t port, uint8_t value) {
  asm volatile("outb %0, %1" : : "a"(value), "d"(port) : "memory");
}

inline void outl(uint16_t port, uint32_t value) {
  asm volatile("outl %0, %1" : : "a"(value), "d"(port) : "memory");
}

inline uint8_t inb(uint16_t port) {
  uint8_t value;
  asm volatile("inb %1, %0" : "=a"(value) : "d"(port) : "memory");
  return value;
}

inline uint32_t inl(uint16_t port) {
  uint32_t value;
  asm volatile("inl %1, %0" : "=a"(value) : "d"(port) : "memory");
  return value;
}

// 32-bit MMIO (LAPIC, IOAPIC registers must be accessed as whole dwords).
inline uint32_t mmio_read32(uint64_t addr) {
  return *reinterpret_cast<volatile uint32_t*>(addr);
}

inline void mmio_write32(uint64_t addr, uint32_t value) {
  *reinterpret_cast<volatile uint32_t*>(addr) = value;
}

inline void cli() {
  asm volatile("cli" : : : "memory");
}
inline void sti() {
  asm volatile("sti" : : : "memory");
}
inline void hlt() {
  asm volatile("hlt" : : : "memory");
}
inline void pause() {
  asm volatile("pause" : : : "memory");
}

// STI's one-instruction interrupt shadow makes "sti; hlt" atomic: an interrupt
// that became pending while IF was 0 wakes the HLT instead of being missed.
inline void sti_hlt() {
  asm volatile("sti; hlt" : : : "memory");
}

inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
// RDTSC after every earlier load has completed (LFENCE; the "memory" clobber keeps
// the compiler from moving loads below it): a stamp taken after reading a flag or an
// index is never earlier than what that read observed.
inline uint64_t rdtsc_ordered() {
  uint32_t lo, hi;
  asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
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

// At CPL 3 PUSHF shows the host's IF, not ours: user.S keeps our IF in
// guest_user_if (a host build of this header defines it itself).
extern "C" volatile uint32_t guest_user_if;
inline bool interrupts_enabled() {
  if (cpl() != 0) return guest_user_if != 0;
  return (read_rflags() & (1u << 9)) != 0;
}

// Stop this CPU for good: interrupts off, HLT in a loop (NMIs may wake it).
[[noreturn]] inline void halt_forever() {
  for (;;) asm volatile("cli; hlt" : : : "memory");
}

}  // namespace guest
