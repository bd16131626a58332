// IDT construction and the C++ side of interrupt dispatch. See interrupts.h.
#include "guest/runtime/interrupts.h"

#include <atomic>

#include "guest/abi/boot_info.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/serial.h"

extern "C" char guest_vector_stubs[];  // vectors.S: 256 stubs, 16 bytes apart
extern "C" void guest_interrupt_dispatch(guest::InterruptFrame* frame);

namespace guest {
namespace {

constexpr uint8_t kInterruptGate = 0x8E;  // present, DPL 0, 64-bit interrupt gate
constexpr uint64_t kStubSize = 16;
constexpr unsigned kPageFault = 14;

struct IdtEntry {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};
static_assert(sizeof(IdtEntry) == 16);

struct __attribute__((packed)) IdtPointer {
  uint16_t limit;
  uint64_t base;
};

alignas(4096) IdtEntry g_idt[256];

// Written by irq_register before the source is enabled, read in dispatch.
// The release store of the handler pairs with the acquire load in dispatch.
std::atomic<IrqHandler> g_handlers[256];
void* g_contexts[256];

// Exception nesting per CPU: a fault inside the report itself exits at once.
std::atomic<uint32_t> g_exception_depth[LABYRINTH_MAX_VCPUS];

const char* const kExceptionNames[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range exceeded",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack-segment fault",
    "#GP general protection",
    "#PF page fault",
    "reserved (15)",
    "#MF x87 floating-point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating-point",
    "#VE virtualization",
    "#CP control protection",
    "reserved (22)",
    "reserved (23)",
    "reserved (24)",
    "reserved (25)",
    "reserved (26)",
    "reserved (27)",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved (31)",
};

void print_report(const InterruptFrame& f, const char* what) {
  const unsigned cpu = this_cpu();
  printf_unlocked("\n*** guest: unhandled %s on cpu %u at cpl %lu: vector %lu (%s)\n", what, cpu,
                  f.cs & 3, f.vector, f.vector < 32 ? exception_name(f.vector) : "interrupt");
  printf_unlocked("    error code 0x%lx  rip 0x%016lx  rsp 0x%016lx  rflags 0x%lx  cs 0x%lx\n",
                  f.error_code, f.rip, f.rsp, f.rflags, f.cs);
  if (f.vector == kPageFault) {
    printf_unlocked("    cr2 0x%016lx (%s, %s, %s, %s)\n", read_cr2(),
                    (f.error_code & 1) ? "protection" : "not present",
                    (f.error_code & 2) ? "write" : "read",
                    (f.error_code & 4) ? "user" : "supervisor",
                    (f.error_code & 16) ? "instruction fetch" : "data");
  }
  printf_unlocked("    rax %016lx rbx %016lx rcx %016lx rdx %016lx\n", f.rax, f.rbx, f.rcx, f.rdx);
  printf_unlocked("    rsi %016lx rdi %016lx rbp %016lx r8  %016lx\n", f.rsi, f.rdi, f.rbp, f.r8);
  printf_unlocked("    r9  %016lx r10 %016lx r11 %016lx r12 %016lx\n", f.r9, f.r10, f.r11, f.r12);
  printf_unlocked("    r13 %016lx r14 %016lx r15 %016lx\n", f.r13, f.r14, f.r15);
  printf_unlocked("*** guest: exit status %d\n", kExitException);
}

[[noreturn]] void fatal(const InterruptFrame& f, const char* what) {
  const unsigned cpu = this_cpu();
  if (cpu >= LABYRINTH_MAX_VCPUS ||
      g_exception_depth[cpu].fetch_add(1, std::memory_order_relaxed) != 0) {
    exit(kExitException);  // faulted while reporting: give up quietly
  }
  // If this CPU faulted while printing, it already owns the serial lock.
  const bool locked_here = !serial_lock().held_by_me();
  if (locked_here) serial_lock().lock();
  print_report(f, what);
  exit(kExitException);
}

}  // namespace

const char* exception_name(unsigned vector) {
  return vector < 32 ? kExceptionNames[vector] : "interrupt";
}

void idt_init() {
  for (unsigned v = 0; v < 256; ++v) {
    const uint64_t addr = reinterpret_cast<uint64_t>(guest_vector_stubs) + v * kStubSize;
    g_idt[v] = IdtEntry{
        .offset_low = static_cast<uint16_t>(addr),
        .selector = LABYRINTH_SEL_KERNEL_CODE,
        .ist = 0,
        .type_attr = kInterruptGate,
        .offset_mid = static_cast<uint16_t>(addr >> 16),
        .offset_high = static_cast<uint32_t>(addr >> 32),
        .reserved = 0,
    };
  }
}

void idt_load() {
  const IdtPointer ptr{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
  asm volatile("lidt %0" : : "m"(ptr) : "memory");
}

bool irq_register(uint8_t vector, IrqHandler handler, void* context) {
  if (vector < kFirstIrqVector || vector == kSpuriousVector || handler == nullptr) return false;
  if (g_handlers[vector].load(std::memory_order_relaxed) != nullptr) return false;
  g_contexts[vector] = context;
  g_handlers[vector].store(handler, std::memory_order_release);
  return true;
}

}  // namespace guest

extern "C" void guest_interrupt_dispatch(guest::InterruptFrame* frame) {
  using namespace guest;
  const uint64_t vector = frame->vector;
  if (vector < kFirstIrqVector) fatal(*frame, "exception");
  if (vector == kSpuriousVector) return;
  const IrqHandler handler = g_handlers[vector].load(std::memory_order_acquire);
  if (handler == nullptr) fatal(*frame, "interrupt (no handler)");
  handler(*frame, g_contexts[vector]);
}
