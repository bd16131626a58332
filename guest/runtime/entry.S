/*
 * _start: the ELF entry point every vCPU enters (see guest/abi/boot_info.h).
 *
 * In: 64-bit long mode, CPL 0, IF = 0, RDI = vCPU index, RSI = boot info GPA,
 * RSP = 0. We
 *   1. reject a vCPU index >= LABYRINTH_MAX_VCPUS (exit status 2, no stack yet);
 *   2. switch to this CPU's stack: guest_stacks + (index + 1) * 16 KiB;
 *   3. on CPU 0: clear .bss, then publish guest_bss_ready = 1;
 *      on the others: spin (PAUSE) until guest_bss_ready is 1;
 *   4. call guest_runtime_start(index, boot_info) (start.cc), which never returns.
 *
 * guest_bss_ready lives in .data and the stacks in their own NOLOAD section
 * (.stacks, after .bss) so that clearing .bss cannot race with APs that are
 * already running on their stacks or polling the flag. x86 stores are not
 * reordered with older stores, so a plain store after REP STOSB publishes the
 * cleared .bss (release); the APs' plain loads are acquire loads on x86.
 */
#define LABYRINTH_MAX_VCPUS 32
#define STACK_SIZE (16 * 1024)
#define PORT_EXIT 0x501
#define EXIT_BAD_BOOT 2

  .section .text.entry, "ax", @progbits
  .globl _start
  .type _start, @function
_start:
  cli
  cld
  cmp $LABYRINTH_MAX_VCPUS, %rdi
  jae .Lbad_cpu

  /* RSP = guest_stacks + (index + 1) * STACK_SIZE */
  lea 1(%rdi), %rax
  shl $14, %rax
  lea guest_stacks(%rip), %rsp
  add %rax, %rsp
  xor %ebp, %ebp

  test %rdi, %rdi
  jnz .Lwait_bss

  /* Boot CPU: clear .bss, keeping RDI/RSI for the call below. */
  mov %rdi, %r12
  mov %rsi, %r13
  lea __bss_start(%rip), %rdi
  lea __bss_end(%rip), %rcx
  sub %rdi, %rcx
  xor %eax, %eax
  rep stosb
  mov %r12, %rdi
  mov %r13, %rsi
  movl $1, guest_bss_ready(%rip)
  jmp .Lcall_main

.Lwait_bss:
  pause
  cmpl $0, guest_bss_ready(%rip)
  je .Lwait_bss

.Lcall_main:
  call guest_runtime_start
  /* not reached */
.Lhalt:
  cli
  hlt
  jmp .Lhalt

.Lbad_cpu:
  mov $PORT_EXIT, %dx
  mov $EXIT_BAD_BOOT, %eax
  outl %eax, %dx
  jmp .Lhalt
  .size _start, . - _start

  .section .data
  .balign 4
  .globl guest_bss_ready
guest_bss_ready:
  .long 0

  .section .stacks, "aw", @nobits
  .balign 4096
  .globl guest_stacks
guest_stacks:
  .skip STACK_SIZE * LABYRINTH_MAX_VCPUS
  .globl guest_stacks_end
guest_stacks_end:

  .section .note.GNU-stack, "", @progbits
