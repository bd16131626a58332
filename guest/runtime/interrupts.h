// Interrupt descriptor table, exception reports and IRQ handler registration.
//
//   guest::irq_register(0x40, on_timer, &state);   // vectors 32..254
//   guest::sti();
//
// All 256 vectors have entry stubs (vectors.S) installed as interrupt gates
// (IF cleared on entry). Dispatch rules:
//   - vectors 0..31 (CPU exceptions) are always fatal: the runtime prints a
//     report (CPU, vector, name, error code, RIP, RSP, RFLAGS, CR2 for #PF and
//     the general registers) on serial and exits with kExitException (3);
//   - vectors 32..254 call the registered handler; the handler must send the
//     EOI itself (guest::lapic_eoi() for LAPIC/IOAPIC interrupts). An interrupt
//     on a vector with no handler is reported and exits with status 3 too;
//   - vector 255 is the LAPIC spurious vector (kSpuriousVector) and is ignored
//     (a spurious interrupt must not be EOI'd);
//   - a #GP from CPL 3 on IN/OUT/CLI/STI/HLT is not an error: user.S performs
//     the instruction (see user.h); any other #GP is reported as above.
// Interrupts taken at CPL 3 arrive on the interrupt stack (TSS.RSP0); the frame
// then holds the CPL-3 CS/SS/RSP, the report prints the CPL (CS & 3), and IRETQ
// returns to CPL 3. From CPL 0 the CPU pushes the same 5 words (64-bit mode).
// idt_init() builds the table once (boot CPU); idt_load() loads it on each CPU.
// start.cc does both before guest_main runs.
#pragma once

#include <stdint.h>

namespace guest {

// Layout must match the push order in vectors.S (lowest address first).
struct InterruptFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector;
  uint64_t error_code;                // 0 for vectors without one
  uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};
static_assert(sizeof(InterruptFrame) == 22 * 8, "see vectors.S");

using IrqHandler = void (*)(InterruptFrame& frame, void* context);

inline constexpr uint8_t kFirstIrqVector = 32;
inline constexpr uint8_t kSpuriousVector = 0xFF;

void idt_init();
void idt_load();

// Registers handler for vector (kFirstIrqVector..254). Returns false for a
// vector outside that range or one that already has a handler. Register before
// the interrupt source is enabled; handlers are never unregistered.
bool irq_register(uint8_t vector, IrqHandler handler, void* context);

const char* exception_name(unsigned vector);

}  // namespace guest
