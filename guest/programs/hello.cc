// hello: the smallest guest. Prints a greeting with the CPU count and RAM size
// from the boot info, then exits 0. Other vCPUs halt (cli; hlt).
#include "guest/runtime/runtime.h"

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::printf("Hello from Labyrinth guest\n");
  guest::printf("hello: %u cpu(s), %lu MiB RAM, tsc %lu kHz, cmdline \"%s\"\n", info.num_cpus,
                info.ram_bytes >> 20, info.tsc_khz,
                info.cmdline_len != 0 ? reinterpret_cast<const char*>(info.cmdline_gpa) : "");
  return guest::kExitPass;
}
