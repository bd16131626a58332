#include "vmm/boot/boot_setup.h"

#include <array>
#include <vector>

namespace labyrinth::vmm {

namespace {

constexpr uint64_t kPtePresent = 1ull << 0, kPteWrite = 1ull << 1, kPteUser = 1ull << 2,
                   kPtePwt = 1ull << 3, kPtePcd = 1ull << 4, kPteHuge = 1ull << 7;
constexpr uint64_t kPml4Gpa = LABYRINTH_PAGE_TABLE_GPA;
constexpr uint64_t kPdptGpa = kPml4Gpa + kPage;
constexpr uint64_t kPdGpa = kPdptGpa + kPage;  // PD for GiB i at kPdGpa + i * 4 KiB

// Each descriptor in the slot its guest/abi/boot_info.h selector names (index =
// selector / 8; the user selectors' low bits are their RPL 3).
std::array<uint64_t, kGdtEntries> make_gdt() {
  std::array<uint64_t, kGdtEntries> gdt{};
  // present, code, exec/read, accessed, L, G
  gdt[LABYRINTH_SEL_KERNEL_CODE / 8] = gdt_entry(0xA09B, 0, 0xFFFFF);
  // present, data, read/write, accessed, D/B, G
  gdt[LABYRINTH_SEL_KERNEL_DATA / 8] = gdt_entry(0xC093, 0, 0xFFFFF);
  // present, 64-bit TSS (busy): low half, then base[63:32] in the high half
  gdt[LABYRINTH_SEL_TSS / 8] = gdt_entry(0x008B, kTssGpa, 0x67);
  gdt[LABYRINTH_SEL_TSS / 8 + 1] = kTssGpa >> 32;
  // the kernel's code and data again with DPL 3
  gdt[LABYRINTH_SEL_USER_CODE / 8] = gdt_entry(0xA0FB, 0, 0xFFFFF);
  gdt[LABYRINTH_SEL_USER_DATA / 8] = gdt_entry(0xC0F3, 0, 0xFFFFF);
  return gdt;
}

}  // namespace

uint64_t gdt_entry(uint64_t flags, uint64_t base, uint64_t limit) {
  return ((base & 0xFF000000ull) << 32) | ((flags & 0xF0FFull) << 40) |
         ((limit & 0xF0000ull) << 32) | ((base & 0x00FFFFFFull) << 16) | (limit & 0xFFFFull);
}

kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xFFFFFFFF;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = code ? 0 : 1;
  s.s = 1;
  s.l = code ? 1 : 0;
  s.g = 1;
  return s;
}

labyrinth_boot_info make_boot_info(const MemoryLayout& layout, const BootParams& params) {
  labyrinth_boot_info info{};
  info.magic = LABYRINTH_BOOT_INFO_MAGIC;
  info.version = LABYRINTH_BOOT_INFO_VERSION;
  info.num_cpus = params.num_cpus;
  info.tsc_khz = params.tsc_khz;
  info.ram_bytes = layout.ram_bytes;
  info.identity_map_end = layout.identity_map_end;
  info.pool_window_gpa = layout.pool.size ? layout.pool.gpa : 0;
  info.pool_window_size = layout.pool.size;
  info.cmdline_gpa = LABYRINTH_CMDLINE_GPA;
  info.cmdline_len = static_cast<uint32_t>(params.cmdline.size());
  auto add = [&](uint64_t base, uint64_t size, uint32_t type) {
    if (size == 0 || info.num_mem_regions >= LABYRINTH_MAX_MEM_REGIONS) return;
    info.mem[info.num_mem_regions++] = {base, size, type, 0};
  };
  add(0, LABYRINTH_GUEST_LOAD_MIN, LABYRINTH_MEM_RESERVED);
  const GpaRange& low = layout.ram.front();
  add(LABYRINTH_GUEST_LOAD_MIN, low.end() - LABYRINTH_GUEST_LOAD_MIN, LABYRINTH_MEM_RAM);
  add(LABYRINTH_MMIO_GAP_START, LABYRINTH_MMIO_GAP_END - LABYRINTH_MMIO_GAP_START,
      LABYRINTH_MEM_RESERVED);
  if (layout.ram.size() > 1) add(layout.ram[1].gpa, layout.ram[1].size, LABYRINTH_MEM_RAM);
  add(layout.pool.gpa, layout.pool.size, LABYRINTH_MEM_POOL);
  return info;
}

std::expected<void, Error> write_boot_structures(const GuestMemory& memory,
                                                 const MemoryLayout& layout,
                                                 const BootParams& params) {
  if (params.cmdline.size() > kMaxCmdline || layout.ram.front().size < LABYRINTH_GUEST_LOAD_MIN) {
    return std::unexpected(Error::boot_layout);
  }

  // Boot info and command line.
  if (auto r = memory.write_obj(LABYRINTH_BOOT_INFO_GPA, make_boot_info(layout, params)); !r) {
    return r;
  }
  std::vector<std::byte> cmdline(params.cmdline.size() + 1, std::byte{0});
  std::memcpy(cmdline.data(), params.cmdline.data(), params.cmdline.size());
  if (auto r = memory.write(LABYRINTH_CMDLINE_GPA, cmdline); !r) return r;

  // GDT and an empty TSS (no I/O bitmap: its offset points past the limit).
  if (auto r = memory.write_obj(LABYRINTH_GDT_GPA, make_gdt()); !r) return r;
  std::array<uint8_t, 0x68> tss{};
  tss[0x66] = 0x68;
  if (auto r = memory.write_obj(kTssGpa, tss); !r) return r;

  return write_identity_map(memory, layout.identity_map_end);
}

std::expected<void, Error> write_identity_map(const GuestMemory& memory, uint64_t map_end) {
  const uint64_t gibs = map_end / kGiB;
  if (map_end % kGiB != 0 || gibs == 0 || gibs > 512 ||
      kPdGpa + gibs * kPage > LABYRINTH_PAGE_TABLE_GPA + kPageTableBytesMax) {
    return std::unexpected(Error::boot_layout);
  }
  // Identity map: PML4[0] -> PDPT; PDPT[i] -> PD i; PD entries are 2 MiB pages.
  std::array<uint64_t, 512> table{};
  // Every level is user-accessible (U): guests run their hot code at CPL 3, where this
  // nested host executes it natively (CPL 0 code is emulated, ~1-8 us per instruction).
  table[0] = kPdptGpa | kPtePresent | kPteWrite | kPteUser;
  if (auto r = memory.write_obj(kPml4Gpa, table); !r) return r;
  table.fill(0);
  for (uint64_t i = 0; i < gibs; ++i) {
    table[i] = (kPdGpa + i * kPage) | kPtePresent | kPteWrite | kPteUser;
  }
  if (auto r = memory.write_obj(kPdptGpa, table); !r) return r;
  for (uint64_t i = 0; i < gibs; ++i) {
    for (uint64_t j = 0; j < 512; ++j) {
      const uint64_t addr = i * kGiB + j * kHugePage;
      uint64_t pte = addr | kPtePresent | kPteWrite | kPteUser | kPteHuge;
      if (addr >= LABYRINTH_MMIO_GAP_START && addr < LABYRINTH_MMIO_GAP_END) {
        pte |= kPtePcd | kPtePwt;
      }
      table[j] = pte;
    }
    if (auto r = memory.write_obj(kPdGpa + i * kPage, table); !r) return r;
  }
  return {};
}

kvm_sregs long_mode_sregs(kvm_sregs s, const LongModeLayout& l) {
  s.cs = flat_segment(l.code_selector, 0xB, true);
  s.ds = s.es = s.fs = s.gs = s.ss = flat_segment(l.data_selector, 0x3, false);
  s.tr = kvm_segment{};
  s.tr.base = l.tss_gpa;
  s.tr.limit = 0x67;
  s.tr.selector = l.tss_selector;
  s.tr.type = 0xB;  // busy 64-bit TSS
  s.tr.present = 1;
  s.ldt = kvm_segment{};
  s.ldt.type = 0x2;
  s.ldt.present = 1;
  s.ldt.unusable = 1;
  s.gdt.base = l.gdt_gpa;
  s.gdt.limit = static_cast<uint16_t>(l.gdt_entries * 8 - 1);
  s.idt.base = 0;
  s.idt.limit = 0;  // the guest installs its own IDT
  s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Wp | kCr0Am | kCr0Pg;
  s.cr3 = LABYRINTH_PAGE_TABLE_GPA;
  s.cr4 = l.cr4;
  s.efer = kEferLme | kEferLma;
  return s;
}

kvm_sregs long_mode_sregs(kvm_sregs s) {
  return long_mode_sregs(
      s, LongModeLayout{kCodeSelector, kDataSelector, kTssSelector, kTssGpa, LABYRINTH_GDT_GPA,
                        kGdtEntries, kCr4Pae | kCr4Osfxsr | kCr4Osxmmexcpt});
}

kvm_regs entry_regs(uint64_t entry, uint32_t vcpu_index) {
  kvm_regs r{};
  r.rip = entry;
  r.rdi = vcpu_index;
  r.rsi = LABYRINTH_BOOT_INFO_GPA;
  r.rsp = 0;
  r.rflags = 0x2;
  return r;
}

}  // namespace labyrinth::vmm
