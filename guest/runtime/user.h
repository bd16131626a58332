// Running guest code at CPL 3 ("user mode") on the runtime's own stack.
//
//   int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
//     if (cpu != 0) guest::halt_forever();
//     setup_that_needs_cpl0();            // nothing needs it today, see below
//     if (!guest::enter_user_mode()) return guest::kExitFail;
//     hot_loop();                         // now at CPL 3, same stack, same IF
//     return guest::kExitPass;            // exit() works at CPL 3 (OUT via the #GP entry)
//   }
//
// Why: on the nested "PVM" KVM host the guest kernel (CPL 0) is emulated
// instruction by instruction (~1-8 us each) while CPL 3 runs natively (~0.5 ns
// per loop iteration), see guest/README.md. The VMM maps every page U and gives
// us user segments (boot_info.h: LABYRINTH_SEL_USER_CODE/_DATA), so a guest can drop to CPL 3
// for good and keep using everything it used before:
//   - MMIO (LAPIC EOI, lnic registers), RDTSC and PAUSE run directly;
//   - cpu.h's port I/O, cli/sti, sti_hlt and halt_forever work unchanged: we set
//     IOPL 3, but the nested host ignores it and delivers no INT n from CPL 3
//     (#UD), so those instructions raise #GP and the runtime's #GP entry
//     (user.S) performs them at CPL 0 and resumes after them ("sti; hlt" as one
//     atomic unit). Each costs a #GP round trip plus a dozen emulated
//     instructions (tens of us): fine for printf, exit and a sleep per wake-up,
//     not for a per-frame hot path;
//   - interrupts and exceptions arrive at CPL 0 on a dedicated 16 KiB interrupt
//     stack (TSS.RSP0); handlers run at CPL 0 (emulated: keep them short) and
//     IRETQ back to CPL 3. Exception reports show the interrupted CPL.
// Not available at CPL 3: other privileged instructions (LIDT, MOV CR, WRMSR),
// read_cr2() (the report reads CR2 at CPL 0).
//
// One CPU only: the VMM's GDT has a single TSS shared by all vCPUs, so there is
// one RSP0 and two CPUs taking interrupts from CPL 3 would share one stack.
// enter_user_mode() therefore works on CPU 0 only (false elsewhere); the other
// CPUs stay at CPL 0.
#pragma once

#include <stdint.h>

namespace guest {

inline constexpr uint64_t kUserIrqStackSize = 16 * 1024;  // see user.S

// Points TSS.RSP0 at the interrupt stack and IRETQs to CPL 3 at the caller's
// return address on the current stack, with RFLAGS = current flags + IOPL 3
// (IF unchanged; IOPL 3 is ignored by the nested host, see above). Idempotent.
// False (nothing changed) on a CPU other than 0.
bool enter_user_mode();

// True if rsp lies in the CPL-3 interrupt stack (this_cpu() uses it).
bool on_user_irq_stack(uint64_t rsp);

}  // namespace guest
