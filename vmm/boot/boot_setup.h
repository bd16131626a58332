// vmm/boot/boot_setup.h — the machine state a Labyrinth test guest starts in.
//
// Per guest/abi/boot_info.h: the VMM writes into its low memory the boot info
// (0x1000), the command line (0x2000), a GDT with a TSS (0x3000) and identity page
// tables with 2 MiB pages (0x10000: PML4, PDPT, then one PD per GiB) covering
// [0, identity_map_end) — RAM and pool window write-back, the MMIO gap PCD|PWT.
// Every vCPU then starts in 64-bit mode at the entry point.
//
//   write_boot_structures(*memory, layout, {.num_cpus = 2, .tsc_khz = khz, .cmdline = ""});
//   vcpu->set_sregs(long_mode_sregs(vcpu->sregs().value()));
//   vcpu->set_regs(entry_regs(image.entry, vcpu->index()));
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <string_view>

#include "guest/abi/boot_info.h"
#include "vmm/error.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace labyrinth::vmm {

inline constexpr uint64_t kTssGpa = LABYRINTH_TSS_GPA;  // after the GDT, same page
inline constexpr uint16_t kCodeSelector = LABYRINTH_SEL_KERNEL_CODE;
inline constexpr uint16_t kDataSelector = LABYRINTH_SEL_KERNEL_DATA;
inline constexpr uint16_t kTssSelector = LABYRINTH_SEL_TSS;
// Null, kernel code and data, the TSS (two slots), user code and data.
inline constexpr uint16_t kGdtEntries = LABYRINTH_SEL_USER_DATA / 8 + 1;
inline constexpr size_t kMaxCmdline = 4095;  // plus the NUL: one page

struct BootParams {
  uint32_t num_cpus = 1;
  uint64_t tsc_khz = 0;
  std::string_view cmdline;
};

// Writes boot info, command line, GDT/TSS and page tables.
std::expected<void, Error> write_boot_structures(const GuestMemory& memory,
                                                 const MemoryLayout& layout,
                                                 const BootParams& params);
// Identity page tables at LABYRINTH_PAGE_TABLE_GPA for [0, map_end) (a multiple of
// 1 GiB, at most kPageTableBytesMax of tables): 2 MiB pages, the MMIO gap PCD|PWT.
inline constexpr uint64_t kPageTableBytesMax = LABYRINTH_GUEST_LOAD_MIN - LABYRINTH_PAGE_TABLE_GPA;
std::expected<void, Error> write_identity_map(const GuestMemory& memory, uint64_t map_end);
// The boot info alone (exposed for tests).
labyrinth_boot_info make_boot_info(const MemoryLayout& layout, const BootParams& params);

// A GDT descriptor (flags: access byte in bits 0-7, G/D/L/AVL in bits 12-15) and the
// flat ring-0 segment KVM should load for it (code: 64-bit, type 0xB; data: type 0x3).
uint64_t gdt_entry(uint64_t flags, uint64_t base, uint64_t limit);
kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code);

// Where a long-mode entry's GDT and TSS are, and its CR4 (the Labyrinth guests' and
// Linux's differ only in these).
struct LongModeLayout {
  uint16_t code_selector, data_selector, tss_selector;
  uint64_t tss_gpa, gdt_gpa;
  uint16_t gdt_entries;
  uint64_t cr4;
};
// base with flat long-mode segments, that GDT, a busy TSS, paging on
// LABYRINTH_PAGE_TABLE_GPA, CR0/CR4/EFER set; no IDT (the guest installs its own).
kvm_sregs long_mode_sregs(kvm_sregs base, const LongModeLayout& layout);
// ... with the Labyrinth guests' layout (boot_info.h).
kvm_sregs long_mode_sregs(kvm_sregs base);
// RIP = entry, RDI = vcpu index, RSI = boot info GPA, RSP = 0, RFLAGS = 2.
kvm_regs entry_regs(uint64_t entry, uint32_t vcpu_index);

// Control register bits used above.
inline constexpr uint64_t kCr0Pe = 1ull << 0, kCr0Mp = 1ull << 1, kCr0Et = 1ull << 4,
                          kCr0Ne = 1ull << 5, kCr0Wp = 1ull << 16, kCr0Am = 1ull << 18,
                          kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5, kCr4Osfxsr = 1ull << 9, kCr4Osxmmexcpt = 1ull << 10;
inline constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;

}  // namespace labyrinth::vmm
