// fault: checks the runtime's exception path. Reads an address just above the
// identity map (never mapped), so the CPU raises #PF; the runtime prints the
// report (vector 14, error code, RIP, CR2, RSP) and exits with status 3.
// Reaching the end of guest_main means no fault happened: exit 1.
// With the command line "ud2" it executes UD2 instead (#UD, vector 6).
#include "guest/runtime/runtime.h"

namespace {

bool cmdline_is(const labyrinth_boot_info& info, const char* word) {
  const char* s = reinterpret_cast<const char*>(info.cmdline_gpa);
  for (uint32_t i = 0; i <= info.cmdline_len; ++i) {
    if (word[i] == '\0') return i == info.cmdline_len || s[i] == ' ';
    if (i == info.cmdline_len || s[i] != word[i]) return false;
  }
  return false;
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  if (info.cmdline_len != 0 && cmdline_is(info, "ud2")) {
    guest::printf("fault: executing ud2, expecting #UD and exit status 3\n");
    asm volatile("ud2");
  } else {
    const uint64_t addr = info.identity_map_end + 0x1000;
    guest::printf("fault: reading unmapped 0x%lx, expecting #PF and exit status 3\n", addr);
    const uint64_t value = *reinterpret_cast<volatile const uint64_t*>(addr);
    guest::printf("fault: FAIL: read 0x%lx without a fault\n", value);
  }
  return guest::kExitFail;
}
