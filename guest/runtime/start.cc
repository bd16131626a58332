// Runtime start-up: from entry.S to guest_main on every vCPU.
//
// The boot CPU (index 0) initialises serial, builds and loads the IDT,
// validates the boot info (printing what is wrong and exiting with
// kExitBadBoot), sets up the TSC helper, runs static constructors, then
// publishes g_ready. Other CPUs wait for g_ready, load the IDT and enter
// guest_main. The release store of g_ready pairs with the APs' acquire loads,
// so they see the IDT, boot info pointer and TSC frequency.
#include <atomic>

#include "guest/abi/boot_info.h"
#include "guest/abi/ports.h"
#include "guest/runtime/interrupts.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/serial.h"
#include "guest/runtime/tsc.h"
#include "guest/runtime/user.h"

extern "C" char guest_stacks[];             // entry.S
extern "C" char __image_end[];              // linker.ld
extern "C" void (*__init_array_start[])();  // linker.ld
extern "C" void (*__init_array_end[])();
extern "C" [[noreturn]] void guest_runtime_start(uint64_t cpu, uint64_t boot_info_gpa);

// entry.S cannot include boot_info.h (C declarations); it repeats these values.
static_assert(LABYRINTH_MAX_VCPUS == 32, "update LABYRINTH_MAX_VCPUS in entry.S");
static_assert(guest::kStackSize == 16 * 1024, "update STACK_SIZE (and the shift) in entry.S");

namespace guest {
namespace {

const labyrinth_boot_info* g_info = nullptr;
std::atomic<uint32_t> g_ready{0};

// Returns nullptr if the boot info is usable, else a description of the problem.
const char* check_boot_info(uint64_t gpa, char* buf, size_t size) {
  if (gpa == 0 || gpa + sizeof(labyrinth_boot_info) > LABYRINTH_GUEST_LOAD_MIN) {
    snprintf(buf, size, "address 0x%lx is not in VMM low memory (expected 0x%llx)", gpa,
             LABYRINTH_BOOT_INFO_GPA);
    return buf;
  }
  const auto* info = reinterpret_cast<const labyrinth_boot_info*>(gpa);
  if (info->magic != LABYRINTH_BOOT_INFO_MAGIC) {
    snprintf(buf, size, "bad magic 0x%016lx (expected 0x%016llx \"LBHBOOT1\")", info->magic,
             LABYRINTH_BOOT_INFO_MAGIC);
    return buf;
  }
  if (info->version != LABYRINTH_BOOT_INFO_VERSION) {
    snprintf(buf, size, "version %u, this guest understands version %u", info->version,
             LABYRINTH_BOOT_INFO_VERSION);
    return buf;
  }
  if (info->num_cpus == 0 || info->num_cpus > LABYRINTH_MAX_VCPUS) {
    snprintf(buf, size, "num_cpus %u is outside 1..%u", info->num_cpus, LABYRINTH_MAX_VCPUS);
    return buf;
  }
  const uint64_t image_end = reinterpret_cast<uint64_t>(__image_end);
  if (info->identity_map_end < image_end) {
    snprintf(buf, size, "identity_map_end 0x%lx is below the end of this image (0x%lx)",
             info->identity_map_end, image_end);
    return buf;
  }
  if (info->num_mem_regions > LABYRINTH_MAX_MEM_REGIONS) {
    snprintf(buf, size, "num_mem_regions %u exceeds %u", info->num_mem_regions,
             LABYRINTH_MAX_MEM_REGIONS);
    return buf;
  }
  return nullptr;
}

[[noreturn]] void boot_cpu(uint64_t boot_info_gpa) {
  serial_init();
  idt_init();
  idt_load();

  char why[128];
  if (check_boot_info(boot_info_gpa, why, sizeof(why)) != nullptr) {
    printf("guest runtime: invalid boot info: %s\n", why);
    exit(kExitBadBoot);
  }
  g_info = reinterpret_cast<const labyrinth_boot_info*>(boot_info_gpa);
  if (g_info->tsc_khz == 0) {
    printf("guest runtime: warning: boot info tsc_khz is 0, assuming %lu kHz\n", kFallbackTscKhz);
  }
  tsc_init(g_info->tsc_khz);
  for (auto* ctor = __init_array_start; ctor != __init_array_end; ++ctor) (*ctor)();

  g_ready.store(1, std::memory_order_release);
  exit(guest_main(0, *g_info));
}

[[noreturn]] void secondary_cpu(unsigned cpu) {
  while (g_ready.load(std::memory_order_acquire) == 0) pause();
  idt_load();
  if (cpu >= g_info->num_cpus) {
    printf("guest runtime: cpu %u started but boot info says num_cpus = %u; halting it\n", cpu,
           g_info->num_cpus);
    halt_forever();
  }
  guest_main(cpu, *g_info);
  halt_forever();
}

}  // namespace

void exit(int status) {
  outl(LABYRINTH_PORT_EXIT, static_cast<uint32_t>(status));
  halt_forever();
}

const labyrinth_boot_info& boot_info() {
  return *g_info;
}

unsigned this_cpu() {
  uint64_t rsp;
  asm volatile("mov %%rsp, %0" : "=r"(rsp));
  if (on_user_irq_stack(rsp)) return 0;  // only CPU 0 runs at CPL 3 (user.h)
  return static_cast<unsigned>((rsp - reinterpret_cast<uint64_t>(guest_stacks)) / kStackSize);
}

}  // namespace guest

extern "C" void guest_runtime_start(uint64_t cpu, uint64_t boot_info_gpa) {
  if (cpu == 0) guest::boot_cpu(boot_info_gpa);
  guest::secondary_cpu(static_cast<unsigned>(cpu));
}
