#include "vmm/boot/multiboot_loader.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "guest/abi/boot_info.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/byte_fields.h"

namespace labyrinth::vmm {

namespace {

constexpr size_t kMaxSegments = 64;
constexpr uint64_t k4GiB = 1ull << 32;
constexpr size_t kMbiBytes = 116;                // up to the framebuffer fields (spec 0.6.96)
constexpr size_t kMmapEntryBytes = 24;           // size (u32), base (u64), length (u64), type
constexpr uint64_t kMbLowerEnd = kLinuxEbdaGpa;  // RAM below 1 MiB the kernel may use
constexpr std::string_view kLoaderName = "labyrinth";

// Multiboot information field offsets.
constexpr uint64_t kAtFlags = 0, kAtMemLower = 4, kAtMemUpper = 8, kAtCmdline = 16,
                   kAtModsCount = 20, kAtModsAddr = 24, kAtMmapLength = 44, kAtMmapAddr = 48,
                   kAtLoaderNameAddr = 64;

std::unexpected<BootError> kernel_error(std::string detail) {
  return std::unexpected(BootError{"boot-source.kernel_image_path", std::move(detail)});
}

// The first 4-byte aligned offset in the first 8 KiB holding the header magic, the
// whole 12-byte header inside both the file and those 8 KiB.
std::optional<uint32_t> find_header(std::span<const std::byte> image) {
  const size_t limit = std::min(image.size(), kMultibootSearchBytes);
  for (size_t off = 0; off + 12 <= limit; off += 4) {
    if (get<uint32_t>(image, off) == kMultibootMagic) return static_cast<uint32_t>(off);
  }
  return std::nullopt;
}

bool overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

// The ELF32 container: header, program header table, PT_LOAD segments (inside the file,
// below 4 GiB, not overlapping), the entry point inside one of them.
std::expected<void, BootError> parse_elf32(std::span<const std::byte> image, MultibootKernel& k) {
  Elf32_Ehdr eh{};
  if (image.size() < sizeof(eh) || std::memcmp(image.data(), ELFMAG, SELFMAG) != 0) {
    return kernel_error(
        k.flags & kMbAoutKludge
            ? "multiboot header flags bit 16 (a.out kludge load addresses) without an ELF "
              "container: not supported, link the kernel as ELF32"
            : "multiboot kernel is not an ELF file (no ELF magic)");
  }
  std::memcpy(&eh, image.data(), sizeof(eh));
  if (eh.e_ident[EI_CLASS] != ELFCLASS32) {
    return kernel_error(fmt::format(
        "ELF class {}: a multiboot kernel must be ELF32 (objcopy -O elf32-i386)",
        eh.e_ident[EI_CLASS] == ELFCLASS64 ? "ELF64" : std::to_string(eh.e_ident[EI_CLASS])));
  }
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return kernel_error("ELF data encoding: not little endian");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    return kernel_error(fmt::format("ELF e_version {}: expected 1", eh.e_version));
  }
  if (eh.e_type != ET_EXEC) {
    return kernel_error(fmt::format("ELF e_type {}: not an executable (ET_EXEC)", eh.e_type));
  }
  if (eh.e_machine != EM_386) {
    return kernel_error(fmt::format("ELF e_machine {}: not i386 (3)", eh.e_machine));
  }
  if (eh.e_phentsize != sizeof(Elf32_Phdr)) {
    return kernel_error(
        fmt::format("ELF e_phentsize {}: expected {}", eh.e_phentsize, sizeof(Elf32_Phdr)));
  }
  if (eh.e_phnum == 0 || eh.e_phnum > kMaxSegments) {
    return kernel_error(fmt::format("ELF e_phnum {}: expected 1..{}", eh.e_phnum, kMaxSegments));
  }
  // 32-bit fields summed in 64 bits: no overflow anywhere below.
  if (uint64_t{eh.e_phoff} + uint64_t{eh.e_phnum} * sizeof(Elf32_Phdr) > image.size()) {
    return kernel_error(
        fmt::format("ELF e_phoff {:#x}: the program headers end past the file", eh.e_phoff));
  }
  k.load_low = UINT64_MAX;
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    const auto ph = get<Elf32_Phdr>(image, eh.e_phoff + uint64_t{i} * sizeof(Elf32_Phdr));
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) {
      return kernel_error(fmt::format("ELF program header {}: p_filesz {:#x} > p_memsz {:#x}", i,
                                      ph.p_filesz, ph.p_memsz));
    }
    if (uint64_t{ph.p_offset} + ph.p_filesz > image.size()) {
      return kernel_error(fmt::format(
          "ELF program header {}: p_offset {:#x} + p_filesz {:#x} ends past the file ({} bytes)", i,
          ph.p_offset, ph.p_filesz, image.size()));
    }
    const uint64_t end = uint64_t{ph.p_paddr} + ph.p_memsz;
    if (end > k4GiB) {
      return kernel_error(
          fmt::format("ELF program header {}: p_paddr {:#x} + p_memsz {:#x} ends past 4 GiB", i,
                      ph.p_paddr, ph.p_memsz));
    }
    for (const auto& o : k.segments) {
      if (overlaps(ph.p_paddr, ph.p_memsz, o.p_paddr, o.p_memsz)) {
        return kernel_error(fmt::format(
            "ELF program header {}: p_paddr {:#x} + p_memsz {:#x} overlaps the segment at {:#x}", i,
            ph.p_paddr, ph.p_memsz, o.p_paddr));
      }
    }
    k.segments.push_back(ph);
    k.load_low = std::min<uint64_t>(k.load_low, ph.p_paddr);
    k.load_end = std::max(k.load_end, end);
  }
  if (k.segments.empty()) return kernel_error("ELF: no PT_LOAD segment with p_memsz > 0");
  // e_entry is virtual: find its segment and translate to the physical address.
  for (const auto& ph : k.segments) {
    if (eh.e_entry >= ph.p_vaddr && eh.e_entry - ph.p_vaddr < ph.p_memsz) {
      k.entry = ph.p_paddr + (eh.e_entry - ph.p_vaddr);  // inside the segment: < 4 GiB
      return {};
    }
  }
  return kernel_error(
      fmt::format("ELF e_entry {:#x} is outside every PT_LOAD segment", eh.e_entry));
}

}  // namespace

bool is_multiboot_kernel(std::span<const std::byte> image) {
  return find_header(image).has_value();
}

std::expected<MultibootKernel, BootError> parse_multiboot_kernel(std::span<const std::byte> image) {
  const auto off = find_header(image);
  if (!off) {
    return kernel_error("not a multiboot kernel: no header magic 0x1badb002 in the first 8 KiB");
  }
  MultibootKernel k;
  k.header_offset = *off;
  k.flags = get<uint32_t>(image, *off + 4);
  const uint32_t checksum = get<uint32_t>(image, *off + 8);
  if (kMultibootMagic + k.flags + checksum != 0) {  // mod 2^32
    return kernel_error(fmt::format(
        "multiboot header checksum {:#x} at offset {:#x}: magic + flags + checksum must be 0 "
        "(expected {:#x})",
        checksum, *off + 8, 0u - kMultibootMagic - k.flags));
  }
  const uint32_t unsupported = k.flags & 0xFFFFu & ~(kMbPageAlign | kMbMemoryInfo);
  if (unsupported != 0) {
    return kernel_error(fmt::format(
        "multiboot header flags {:#x}: required feature bit(s) {:#x} not supported{}", k.flags,
        unsupported, (unsupported & kMbVideoMode) ? " (bit 2: a video mode)" : ""));
  }
  if (auto r = parse_elf32(image, k); !r) return std::unexpected(r.error());
  return k;
}

std::expected<MultibootPlan, BootError> plan_multiboot_boot(const MultibootKernel& kernel,
                                                            const MemoryLayout& layout,
                                                            uint64_t module_size,
                                                            std::string_view cmdline,
                                                            std::string_view module_name) {
  bool over_block = false;
  for (const auto& ph : kernel.segments) {
    // Below 1 MiB: from 4 KiB (page 0 is the kernel's AP trampoline) to the EBDA.
    if (ph.p_paddr < LABYRINTH_GUEST_LOAD_MIN &&
        (ph.p_paddr < kPage || ph.p_memsz > kMbLowerEnd || ph.p_paddr > kMbLowerEnd - ph.p_memsz)) {
      return kernel_error(fmt::format(
          "ELF segment at p_paddr {:#x} + p_memsz {:#x} is below 1 MiB but not inside "
          "[0x1000, {:#x}) (page 0 and the BIOS area from the EBDA up are not RAM for it)",
          ph.p_paddr, ph.p_memsz, kMbLowerEnd));
    }
    over_block = over_block || overlaps(ph.p_paddr, ph.p_memsz, kMbGdtGpa, kMbBlockBytes);
    if (overlaps(ph.p_paddr, ph.p_memsz, LABYRINTH_MMIO_GAP_START,
                 LABYRINTH_MMIO_GAP_END - LABYRINTH_MMIO_GAP_START)) {
      return kernel_error(fmt::format(
          "ELF segment at p_paddr {:#x} + p_memsz {:#x} reaches into the MMIO gap at {:#x}",
          ph.p_paddr, ph.p_memsz, LABYRINTH_MMIO_GAP_START));
    }
  }
  const uint64_t low_end = layout.ram.front().end();
  if (kernel.load_end > low_end) {
    return std::unexpected(BootError{
        "machine-config.mem_size_mib",
        fmt::format("the multiboot kernel needs RAM up to {:#x} (its ELF segments and .bss), "
                    "RAM below the MMIO gap ends at {:#x}",
                    kernel.load_end, low_end)});
  }
  if (cmdline.size() + 1 + module_name.size() + 1 > kMbStringsEnd - kMbCmdlineGpa) {
    return std::unexpected(BootError{
        "boot-source.boot_args",
        fmt::format("the command line (kernel path and boot_args, {} bytes) and the module's "
                    "path ({} bytes) do not fit the {} bytes at {:#x}",
                    cmdline.size(), module_name.size(), kMbStringsEnd - kMbCmdlineGpa,
                    kMbCmdlineGpa)});
  }
  MultibootPlan plan;
  // The first page at or above `from` where `bytes` fit: clear of the block (when
  // `block_set`), not across the EBDA and BIOS area [EBDA, 1 MiB), below low_end. Each
  // move only goes up, so two rounds settle it (block, EBDA, block).
  const auto place = [&](uint64_t from, uint64_t bytes, bool block_set) -> std::optional<uint64_t> {
    uint64_t at = align_up(from, kPage);
    for (int round = 0; round < 2; ++round) {
      if (block_set && at < plan.block + kMbBlockBytes &&
          bytes > plan.block - std::min(at, plan.block)) {
        at = plan.block + kMbBlockBytes;  // it would overlap the block: above it
      }
      if (at < LABYRINTH_GUEST_LOAD_MIN && (at > kMbLowerEnd || bytes > kMbLowerEnd - at)) {
        at = LABYRINTH_GUEST_LOAD_MIN;  // it would reach into the EBDA: from 1 MiB
      }
    }
    if (at > low_end || bytes > low_end - at) return std::nullopt;
    return at;
  };
  if (over_block) {  // the kernel sits where the block goes: the block goes above it
    const auto block = place(kernel.load_end, kMbBlockBytes, false);
    if (!block) {
      return std::unexpected(BootError{
          "machine-config.mem_size_mib",
          fmt::format("the multiboot kernel covers {:#x}, where the boot information goes, and "
                      "RAM below the MMIO gap ends at {:#x}, too soon after its end {:#x} for "
                      "the {:#x} bytes to go there instead",
                      kMbGdtGpa, low_end, kernel.load_end, kMbBlockBytes)});
    }
    plan.block = *block;
  }
  if (module_name.empty()) return plan;
  // Page aligned above the kernel and clear of the block, one zero byte after it (a
  // reader may look for a NUL).
  const auto start =
      module_size < k4GiB ? place(kernel.load_end, module_size + 1, true) : std::nullopt;
  if (!start) {
    return std::unexpected(BootError{
        "boot-source.initrd_path",
        fmt::format("{} bytes do not fit between the kernel's end {:#x} and RAM's end below the "
                    "MMIO gap {:#x}",
                    module_size, kernel.load_end, low_end)});
  }
  plan.module_gpa = *start;
  plan.module_size = module_size;
  return plan;
}

std::string multiboot_cmdline(std::string_view image_path, std::string_view boot_args) {
  std::string line(image_path);
  if (!boot_args.empty()) {
    line += ' ';
    line += boot_args;
  }
  return line;
}

std::vector<std::byte> make_multiboot_info(const MultibootPlan& plan, const MemoryLayout& layout) {
  std::vector<std::byte> mbi(kMbiBytes, std::byte{0});
  std::span<std::byte> b(mbi);
  uint32_t flags = kMbiMem | kMbiCmdline | kMbiMmap | kMbiLoaderName;
  if (plan.module_gpa != 0) flags |= kMbiMods;
  put<uint32_t>(b, kAtFlags, flags);
  put<uint32_t>(b, kAtMemLower, static_cast<uint32_t>(kMbLowerEnd / kKiB));
  // KiB from 1 MiB to the first hole; low RAM ends at 3 GiB at most: fits 32 bits.
  put<uint32_t>(
      b, kAtMemUpper,
      static_cast<uint32_t>((layout.ram.front().end() - LABYRINTH_GUEST_LOAD_MIN) / kKiB));
  put<uint32_t>(b, kAtCmdline, static_cast<uint32_t>(plan.at(kMbCmdlineGpa)));
  put<uint32_t>(b, kAtModsCount, plan.module_gpa != 0 ? 1 : 0);
  put<uint32_t>(b, kAtModsAddr, static_cast<uint32_t>(plan.at(kMbModsGpa)));
  put<uint32_t>(b, kAtMmapLength,
                static_cast<uint32_t>(linux_e820(layout).size() * kMmapEntryBytes));
  put<uint32_t>(b, kAtMmapAddr, static_cast<uint32_t>(plan.at(kMbMmapGpa)));
  put<uint32_t>(b, kAtLoaderNameAddr, static_cast<uint32_t>(plan.at(kMbLoaderNameGpa)));
  return mbi;
}

std::expected<void, Error> load_multiboot(std::span<const std::byte> image,
                                          const MultibootKernel& kernel, const MultibootPlan& plan,
                                          std::span<const std::byte> module,
                                          std::string_view cmdline, std::string_view module_name,
                                          const GuestMemory& memory, const MemoryLayout& layout) {
  if (module.size() != plan.module_size || (plan.module_gpa != 0) != !module_name.empty() ||
      cmdline.size() + module_name.size() + 2 > kMbStringsEnd - kMbCmdlineGpa) {
    return std::unexpected(Error::boot_layout);  // not the plan for these inputs
  }
  // The segments (parse_multiboot_kernel checked them against the file).
  for (const auto& ph : kernel.segments) {
    auto dst = memory.translate(ph.p_paddr, ph.p_memsz);
    if (!dst) return std::unexpected(dst.error());
    std::memcpy(dst->data(), image.data() + ph.p_offset, ph.p_filesz);
    std::memset(dst->data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);  // .bss
  }
  // The module and its zero byte.
  if (plan.module_gpa != 0) {
    auto dst = memory.translate(plan.module_gpa, plan.module_size + 1);
    if (!dst) return std::unexpected(dst.error());
    std::memcpy(dst->data(), module.data(), module.size());
    (*dst)[module.size()] = std::byte{0};
  }
  // The strings: command line, then the module's name, each NUL-terminated.
  std::vector<std::byte> strings(cmdline.size() + module_name.size() + 2, std::byte{0});
  std::memcpy(strings.data(), cmdline.data(), cmdline.size());
  std::memcpy(strings.data() + cmdline.size() + 1, module_name.data(), module_name.size());
  if (auto r = memory.write(plan.at(kMbCmdlineGpa), strings); !r) return r;
  std::vector<std::byte> name(kLoaderName.size() + 1, std::byte{0});
  std::memcpy(name.data(), kLoaderName.data(), kLoaderName.size());
  if (auto r = memory.write(plan.at(kMbLoaderNameGpa), name); !r) return r;
  // The module list: start, end (exclusive), string, reserved.
  if (plan.module_gpa != 0) {
    const std::array<uint32_t, 4> mod = {
        static_cast<uint32_t>(plan.module_gpa),
        static_cast<uint32_t>(plan.module_gpa + plan.module_size),
        static_cast<uint32_t>(plan.at(kMbCmdlineGpa) + cmdline.size() + 1), 0};
    if (auto r = memory.write_obj(plan.at(kMbModsGpa), mod); !r) return r;
  }
  // The memory map: each entry's size field counts the 20 bytes after it.
  const auto e820 = linux_e820(layout);
  std::vector<std::byte> mmap(e820.size() * kMmapEntryBytes);
  for (size_t i = 0; i < e820.size(); ++i) {
    const uint64_t off = i * kMmapEntryBytes;
    put<uint32_t>(mmap, off, kMmapEntryBytes - 4);
    put<uint64_t>(mmap, off + 4, e820[i].addr);
    put<uint64_t>(mmap, off + 12, e820[i].size);
    put<uint32_t>(mmap, off + 20, e820[i].type);
  }
  if (auto r = memory.write(plan.at(kMbMmapGpa), mmap); !r) return r;
  if (auto r = memory.write(plan.at(kMbInfoGpa), make_multiboot_info(plan, layout)); !r) {
    return r;
  }
  // GDT: null, flat 32-bit code, flat 32-bit data.
  const std::array<uint64_t, 3> gdt = {0, gdt_entry(0xC09B, 0, 0xFFFFF),
                                       gdt_entry(0xC093, 0, 0xFFFFF)};
  if (auto r = memory.write_obj(plan.at(kMbGdtGpa), gdt); !r) return r;
  spdlog::debug(
      "multiboot: kernel {:#x}..{:#x}, entry {:#x}, boot information {:#x}, module {:#x} (+{:#x})",
      kernel.load_low, kernel.load_end, kernel.entry, plan.block, plan.module_gpa,
      plan.module_size);
  return {};
}

kvm_sregs multiboot_sregs(kvm_sregs s, const MultibootPlan& plan) {
  auto seg = [](uint16_t selector, uint8_t type, bool code) {
    kvm_segment g = flat_segment(selector, type, code);
    g.l = 0;  // 32-bit protected mode, not long mode
    g.db = 1;
    return g;
  };
  s.cs = seg(kMbCodeSelector, 0xB, true);                               // execute/read, accessed
  s.ds = s.es = s.fs = s.gs = s.ss = seg(kMbDataSelector, 0x3, false);  // read/write, accessed
  s.gdt.base = plan.at(kMbGdtGpa);
  s.gdt.limit = 3 * 8 - 1;
  s.idt.base = 0;
  s.idt.limit = 0;  // the kernel installs its own
  s.cr0 = kCr0Pe | kCr0Et;
  s.cr3 = 0;
  s.cr4 = 0;
  s.efer = 0;
  return s;  // TR and LDT stay as KVM reset them (a valid 32-bit busy TSS, no LDT)
}

kvm_regs multiboot_regs(uint32_t entry, const MultibootPlan& plan) {
  kvm_regs r{};
  r.rip = entry;
  r.rax = kMultibootBootloaderMagic;
  r.rbx = plan.at(kMbInfoGpa);
  r.rflags = 0x2;
  return r;
}

}  // namespace labyrinth::vmm
