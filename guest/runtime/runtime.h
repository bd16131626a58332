// The Labyrinth freestanding guest runtime: what a test guest program sees.
//
// A program defines guest_main(); the runtime's _start (entry.S) gives every vCPU
// its own 16 KiB stack, the boot CPU clears .bss, then start.cc initialises
// serial, the IDT and the TSC helper, validates the boot info and calls
// guest_main on every vCPU (CPU 0 first; the others once CPU 0 is ready):
//
//   #include "guest/runtime/runtime.h"
//   int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
//     if (cpu != 0) guest::halt_forever();
//     guest::printf("hello, %u cpus\n", info.num_cpus);
//     return guest::kExitPass;
//   }
//
// The value CPU 0 returns becomes the VM's exit status; an AP that returns
// halts. Exit statuses (the VMM exits with status & 0xFF):
//   0  kExitPass       the test passed
//   1  kExitFail       the test ran and failed (timeout, wrong count, ...)
//   2  kExitBadBoot    the runtime could not start: bad boot info (magic, version,
//                      CPU count) or a vCPU index >= LABYRINTH_MAX_VCPUS
//   3  kExitException  an unhandled CPU exception (report printed on serial)
#pragma once

#include <stdint.h>

#include "guest/abi/boot_info.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/print.h"

namespace guest {

inline constexpr int kExitPass = 0;
inline constexpr int kExitFail = 1;
inline constexpr int kExitBadBoot = 2;
inline constexpr int kExitException = 3;

inline constexpr uint64_t kStackSize = 16 * 1024;  // per vCPU, see entry.S

// Ends the VM through the exit device (LABYRINTH_PORT_EXIT). If the VMM ignores
// the write, this CPU halts forever.
[[noreturn]] void exit(int status);

// Boot info validated by the runtime; valid once guest_main runs.
const labyrinth_boot_info& boot_info();

// Index of the calling vCPU (its RDI at entry), derived from the stack pointer:
// valid anywhere on the runtime's per-CPU stacks, including interrupt handlers.
unsigned this_cpu();

}  // namespace guest

// Provided by each test program. Runs on every vCPU with interrupts disabled.
int guest_main(unsigned cpu, const labyrinth_boot_info& info);
