/*
 * Interrupt entry stubs for all 256 vectors, 16 bytes apart starting at
 * guest_vector_stubs, so the IDT code computes stub i as guest_vector_stubs + 16 * i.
 *
 * Each stub pushes a dummy error code (for vectors where the CPU pushes none)
 * and its vector number, then jumps to the common path, which saves the
 * general-purpose registers into a guest::InterruptFrame (interrupts.h) and
 * calls guest_interrupt_dispatch(frame). Registers are restored on return and
 * the stub's two words dropped before IRETQ.
 *
 * Privilege: in 64-bit mode the CPU pushes SS, RSP, RFLAGS, CS, RIP whether
 * or not the interrupt changes privilege; from CPL 3 (user.h) it first switches
 * to TSS.RSP0, and IRETQ pops the CPL-3 CS/SS/RSP again, so the same stubs
 * serve both. Vector 13 (#GP) goes to guest_gp_entry (user.S) first, which
 * performs the privileged instructions CPL-3 code uses and sends the rest back
 * to guest_interrupt_common.
 *
 * Stack alignment: the CPU aligns RSP to 16 before pushing its 5-word frame;
 * error code + vector + 15 registers make 22 words in total, so RSP is 16-byte
 * aligned at the call as the SysV ABI requires. The runtime is built with
 * -mgeneral-regs-only, so no SSE state needs saving.
 */
  .text
  .balign 16
  .globl guest_vector_stubs
guest_vector_stubs:
  vector = 0
  .rept 256
  .balign 16
  /* Vectors with a CPU-pushed error code: #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX
   (#GP's error code is pushed by the CPU too; user.S handles it). */
  .if vector == 13
  jmp guest_gp_entry
  .else
  .if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
  .else
  pushq $0
  .endif
  pushq $vector
  jmp guest_interrupt_common
  .endif
  vector = vector + 1
  .endr

  .globl guest_interrupt_common
guest_interrupt_common:
  cld
  pushq %rax
  pushq %rbx
  pushq %rcx
  pushq %rdx
  pushq %rsi
  pushq %rdi
  pushq %rbp
  pushq %r8
  pushq %r9
  pushq %r10
  pushq %r11
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  mov %rsp, %rdi
  call guest_interrupt_dispatch
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %r11
  popq %r10
  popq %r9
  popq %r8
  popq %rbp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %rcx
  popq %rbx
  popq %rax
  add $16, %rsp
  iretq

  .section .note.GNU-stack, "", @progbits
