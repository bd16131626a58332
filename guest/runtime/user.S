/*
 * CPL-3 support (see user.h): the IRETQ that drops to CPL 3, the #GP entry that
 * performs the privileged instructions CPL-3 code may use, and the interrupt
 * stack TSS.RSP0 points at.
 *
 * guest_enter_user_mode(): builds an IRETQ frame for "continue at our return
 * address on the current stack, at CPL 3": SS LABYRINTH_SEL_USER_DATA, RSP = RSP
 * before the frame (pointing at our return address), RFLAGS | IOPL 3, CS
 * LABYRINTH_SEL_USER_CODE, RIP = 1f, so after
 * the IRETQ a plain RET returns to the caller. DS/ES/FS/GS hold DPL-0 selectors
 * and are nulled by the IRETQ, which is harmless in 64-bit mode (the runtime
 * uses no FS/GS base).
 *
 * guest_gp_entry: vector 13 (vectors.S jumps here). The nested PVM host ignores
 * IOPL at CPL 3 and delivers no INT n from CPL 3 (#UD), so a CPL-3 program just
 * executes the instruction and takes the #GP: for a #GP from CPL 3 whose
 * instruction is one of
 *   EE outb %al,(%dx)   EC inb (%dx),%al   EF outl %eax,(%dx)   ED inl (%dx),%eax
 *   FA cli (frame IF = 0)   FB sti (frame IF = 1)
 *   FB F4 sti; hlt   (one unit: STI's shadow keeps it atomic, as at CPL 0)
 *   F4 hlt           (sti; hlt if the caller's IF is 1, else hlt with IF = 0)
 * we do it here at CPL 0 and IRETQ past it; anything else goes to the runtime's
 * fatal report like any exception. IN results land in the caller's %al/%eax
 * (nothing here touches RAX/RDX otherwise; RCX is saved). Kept to a dozen
 * instructions: CPL-0 code is emulated on this host (~1-8 us per instruction).
 * HLT runs on the interrupt stack; the waking interrupt nests on it at CPL 0.
 *
 * guest_user_if: the CPL-3 interrupt flag as the host honours it. PUSHF at CPL 3
 * on this host shows the hardware IF (always 1), not ours, so the #GP entry
 * records every CLI/STI here and cpu.h's interrupts_enabled() reads it at CPL 3.
 * Only CPU 0 runs at CPL 3 and only its #GP entry writes it.
 */
#include "guest/abi/boot_info.h"

#define RFLAGS_IOPL3 0x3000
#define IRQ_STACK_SIZE (16 * 1024)
#define VECTOR_GP 13

  .text
  .globl guest_enter_user_mode
  .type guest_enter_user_mode, @function
guest_enter_user_mode:
  mov %rsp, %rax
  pushq $LABYRINTH_SEL_USER_DATA
  pushq %rax
  pushfq
  orq $RFLAGS_IOPL3, (%rsp)
  pushq $LABYRINTH_SEL_USER_CODE
  lea 1f(%rip), %rax
  pushq %rax
  iretq
1:
  ret
  .size guest_enter_user_mode, . - guest_enter_user_mode

/* Frame on entry: error code 0(%rsp), RIP 8, CS 16, RFLAGS 24, RSP 32, SS 40.
 * After the push of RCX everything moves up by 8: RFLAGS.IF is bit 1 of 33(%rsp). */
  .globl guest_gp_entry
  .type guest_gp_entry, @function
guest_gp_entry:
  testb $3, 16(%rsp)
  jz .Lfatal
  pushq %rcx
  movq 16(%rsp), %rcx
  movzwl (%rcx), %ecx       /* first two instruction bytes, first in %cl */
  cmpb $0xEE, %cl
  je .Loutb
  cmpb $0xEC, %cl
  je .Linb
  cmpw $0xF4FB, %cx
  je .Lsti_hlt
  cmpb $0xFA, %cl
  je .Lcli
  cmpb $0xFB, %cl
  je .Lsti
  cmpb $0xEF, %cl
  je .Loutl
  cmpb $0xED, %cl
  je .Linl
  cmpb $0xF4, %cl
  je .Lhlt
  popq %rcx
.Lfatal:
  pushq $VECTOR_GP
  jmp guest_interrupt_common

.Loutb:
  outb %al, %dx
  jmp .Lskip1
.Linb:
  inb %dx, %al
  jmp .Lskip1
.Loutl:
  outl %eax, %dx
  jmp .Lskip1
.Linl:
  inl %dx, %eax
  jmp .Lskip1
.Lcli:
  andb $~2, 33(%rsp)
  movl $0, guest_user_if(%rip)
  jmp .Lskip1
.Lsti:
  orb $2, 33(%rsp)
  movl $1, guest_user_if(%rip)
  jmp .Lskip1
.Lhlt:
  testb $2, 33(%rsp)
  jz 1f
  sti
1:
  hlt
  jmp .Lskip1
.Lsti_hlt:
  movl $1, guest_user_if(%rip)
  sti
  hlt
  orb $2, 33(%rsp)
  popq %rcx
  addq $2, 8(%rsp)
  addq $8, %rsp
  iretq
.Lskip1:
  popq %rcx
  addq $1, 8(%rsp)
  addq $8, %rsp
  iretq
  .size guest_gp_entry, . - guest_gp_entry

  .data
  .balign 4
  .globl guest_user_if
guest_user_if:
  .long 0

  .section .stacks, "aw", @nobits
  .balign 4096
  .globl guest_user_irq_stack
guest_user_irq_stack:
  .skip IRQ_STACK_SIZE
  .globl guest_user_irq_stack_end
guest_user_irq_stack_end:

  .section .note.GNU-stack, "", @progbits
