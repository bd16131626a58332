// fault: checks the runtime's exception path. Reads an address just above the
// identity map (never mapped), so the CPU raises #PF; the runtime prints the
// report (vector 14, error code, RIP, CR2, RSP) and exits with status 3.
// Reaching the end of guest_main means no fault happened: exit 1.
//
// The command line picks a variant:
//   (empty)  CPU 0 reads the unmapped address (#PF, vector 14)
//   "ud2"    CPU 0 executes UD2 (#UD, vector 6)
//   "ap"     CPU 1 (needs 2+ vCPUs) takes the #PF while CPU 0 waits; CPU 0
//            exits 1 if the VM is still running after 5 s
//   "user"   CPU 0 drops to CPL 3 (user.h) and reads the unmapped address: the
//            report comes from the interrupt stack and says "at cpl 3"
#include "guest/runtime/runtime.h"
#include "guest/runtime/tsc.h"
#include "guest/runtime/user.h"

namespace {

bool cmdline_is(const labyrinth_boot_info& info, const char* word) {
  const char* s = reinterpret_cast<const char*>(info.cmdline_gpa);
  for (uint32_t i = 0; i <= info.cmdline_len; ++i) {
    if (word[i] == '\0') return i == info.cmdline_len || s[i] == ' ';
    if (i == info.cmdline_len || s[i] != word[i]) return false;
  }
  return false;
}

void read_unmapped(unsigned cpu, const labyrinth_boot_info& info) {
  const uint64_t addr = info.identity_map_end + 0x1000;
  guest::printf("fault: cpu %u reading unmapped 0x%lx, expecting #PF and exit status 3\n", cpu,
                addr);
  const uint64_t value = *reinterpret_cast<volatile const uint64_t*>(addr);
  guest::printf("fault: FAIL: read 0x%lx without a fault\n", value);
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  const bool on_ap = info.cmdline_len != 0 && cmdline_is(info, "ap");
  if (on_ap && info.num_cpus < 2) {
    guest::printf("fault: FAIL: \"ap\" needs at least 2 vCPUs\n");
    return guest::kExitFail;
  }
  if (cpu != 0) {
    if (on_ap && cpu == 1) read_unmapped(cpu, info);
    guest::halt_forever();
  }

  if (on_ap) {
    guest::mdelay(5000);
    guest::printf("fault: FAIL: cpu 1 did not end the VM with an exception\n");
  } else if (info.cmdline_len != 0 && cmdline_is(info, "ud2")) {
    guest::printf("fault: executing ud2, expecting #UD and exit status 3\n");
    asm volatile("ud2");
  } else if (info.cmdline_len != 0 && cmdline_is(info, "user")) {
    if (!guest::enter_user_mode()) {
      guest::printf("fault: FAIL: cannot enter CPL 3\n");
      return guest::kExitFail;
    }
    guest::printf("fault: now at cpl %u\n", guest::cpl());
    read_unmapped(cpu, info);
  } else {
    read_unmapped(cpu, info);
  }
  return guest::kExitFail;
}
