// vmm/boot/multiboot_loader.h — boots a Multiboot v1 kernel (kvm-unit-tests' x86 tests).
//
// The kernel: a Multiboot header (magic 0x1BADB002, flags, checksum with
// magic + flags + checksum == 0 mod 2^32) 4-byte aligned in the file's first 8 KiB,
// inside an ELF32 i386 executable loaded by its PT_LOAD program headers (p_paddr, .bss
// zeroed; the entry e_entry translated from p_vaddr to p_paddr). Header flags bits
// 0-15 are requirements: bit 0 (modules page aligned) and bit 1 (memory information)
// are honoured, any other (video mode, ...) rejects the kernel, as the specification
// asks; bit 16 (the a.out kludge's load addresses) is not supported — an ELF is needed.
// Everything in the file is untrusted: every offset, length and address is checked,
// and a rejected kernel is a BootError naming boot-source.kernel_image_path and the
// header field.
//
// What the kernel finds: a 32 KiB boot information block, at 0x8000 (page 0 is left
// alone — kvm-unit-tests copy their AP trampoline there):
//   +0x0000 (0x8000)  GDT: 0x08 flat 32-bit code, 0x10 flat 32-bit data
//   +0x1000 (0x9000)  Multiboot information: flags MEM|CMDLINE|MODS|MMAP|LOADER_NAME,
//                     mem_lower 639, mem_upper = KiB of RAM from 1 MiB to the MMIO gap
//   +0x1100 (0x9100)  the module list (at most one module: boot-source.initrd_path)
//   +0x1200 (0x9200)  the memory map (the e820 map Linux gets, linux_e820())
//   +0x1400 (0x9400)  the boot loader name "labyrinth"
//   +0x2000 (0xA000)  the command line "<kernel image path> <boot_args>", then the
//                     module's string, up to the block's end
// A kernel may load below 1 MiB too (kvm-unit-tests' realmode.flat runs from 0x8000):
// from 4 KiB up to the EBDA (0x9FC00), where the MP table and the BIOS area begin. When
// one of its segments overlaps the block at 0x8000, the block goes page aligned above
// the kernel's highest byte instead (where QEMU puts its Multiboot information).
// The module goes page aligned above the kernel (where QEMU puts it), clear of the
// block, followed by at least one zero byte. Neither the block nor the module reaches
// into [EBDA, 1 MiB): what does not fit below the EBDA starts at 1 MiB.
// Entry (vCPU 0 only; the others wait for INIT/SIPI): 32-bit protected mode, paging
// off, CS 0x08 / DS ES FS GS SS 0x10 flat 4 GiB, interrupts off, EAX 0x2BADB002,
// EBX the Multiboot information (0x9000 with the block at 0x8000).
//
//   auto kernel = parse_multiboot_kernel(bytes);        // BootError names the field
//   auto plan = plan_multiboot_boot(*kernel, layout, initrd.size(), cmdline, initrd_path);
//   load_multiboot(bytes, *kernel, *plan, initrd, cmdline, initrd_path, *memory, layout);
//   bsp->set_sregs(multiboot_sregs(bsp->sregs().value()));
//   bsp->set_regs(multiboot_regs(kernel->entry));
#pragma once

#include <elf.h>
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/boot/linux_loader.h"  // BootError, linux_e820
#include "vmm/error.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace labyrinth::vmm {

inline constexpr uint32_t kMultibootMagic = 0x1BADB002;            // in the kernel's header
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2BADB002;  // EAX at entry
inline constexpr size_t kMultibootSearchBytes = 8192;

// Header flags (requirements in bits 0-15).
inline constexpr uint32_t kMbPageAlign = 1u << 0, kMbMemoryInfo = 1u << 1, kMbVideoMode = 1u << 2,
                          kMbAoutKludge = 1u << 16;
// Multiboot information flags set by this loader.
inline constexpr uint32_t kMbiMem = 1u << 0, kMbiCmdline = 1u << 2, kMbiMods = 1u << 3,
                          kMbiMmap = 1u << 6, kMbiLoaderName = 1u << 9;

// The boot information block at its usual place (see the header comment); a plan's
// MultibootPlan::block moves them all together.
inline constexpr uint64_t kMbBlockBytes = 0x8000;
inline constexpr uint64_t kMbGdtGpa = 0x8000;
inline constexpr uint64_t kMbInfoGpa = 0x9000;
inline constexpr uint64_t kMbModsGpa = 0x9100;
inline constexpr uint64_t kMbMmapGpa = 0x9200;
inline constexpr uint64_t kMbLoaderNameGpa = 0x9400;
inline constexpr uint64_t kMbCmdlineGpa = 0xA000;
inline constexpr uint64_t kMbStringsEnd = 0x10000;  // command line + module string, NULs included
inline constexpr uint16_t kMbCodeSelector = 0x08, kMbDataSelector = 0x10;

struct MultibootKernel {
  uint32_t header_offset = 0;        // where the header is in the file
  uint32_t flags = 0;                // the header's flags
  uint32_t entry = 0;                // physical entry point
  uint64_t load_low = 0;             // lowest loaded physical address
  uint64_t load_end = 0;             // one past the highest (the .bss included)
  std::vector<Elf32_Phdr> segments;  // PT_LOAD segments with p_memsz > 0
};

struct MultibootPlan {
  uint64_t module_gpa = 0;  // 0 without a module
  uint64_t module_size = 0;
  uint64_t block = kMbGdtGpa;  // the boot information block (GDT first)
  // Where each piece of the block is with this plan.
  uint64_t at(uint64_t usual) const { return block + (usual - kMbGdtGpa); }
};

// A valid Multiboot header (magic and checksum) in the first 8 KiB, whatever follows.
bool is_multiboot_kernel(std::span<const std::byte> image);

// Reads and validates header and ELF32 container. Errors name boot-source.kernel_image_path.
std::expected<MultibootKernel, BootError> parse_multiboot_kernel(std::span<const std::byte> image);

// Checks the kernel against the memory map (in low RAM, at or above 1 MiB), the command
// line and module string against the string area, and places the module above the
// kernel. module_name: the module's string (its path); cmdline: the whole command line.
std::expected<MultibootPlan, BootError> plan_multiboot_boot(const MultibootKernel& kernel,
                                                            const MemoryLayout& layout,
                                                            uint64_t module_size,
                                                            std::string_view cmdline,
                                                            std::string_view module_name);

// "<image path> <boot_args>" (QEMU's form: the path alone when there are no arguments).
std::string multiboot_cmdline(std::string_view image_path, std::string_view boot_args);

// Writes the segments (zeroing .bss), the module, the strings, the Multiboot information
// and the GDT. The plan must come from plan_multiboot_boot for the same inputs.
std::expected<void, Error> load_multiboot(std::span<const std::byte> image,
                                          const MultibootKernel& kernel, const MultibootPlan& plan,
                                          std::span<const std::byte> module,
                                          std::string_view cmdline, std::string_view module_name,
                                          const GuestMemory& memory, const MemoryLayout& layout);

// The Multiboot information structure alone (exposed for tests): 88 bytes.
std::vector<std::byte> make_multiboot_info(const MultibootPlan& plan, const MemoryLayout& layout);

// 32-bit protected mode, paging off, flat CS 0x08 and data 0x10, the GDT at
// plan.at(kMbGdtGpa).
kvm_sregs multiboot_sregs(kvm_sregs base, const MultibootPlan& plan = {});
// EIP = entry, EAX = 0x2BADB002, EBX = plan.at(kMbInfoGpa), EFLAGS = 2.
kvm_regs multiboot_regs(uint32_t entry, const MultibootPlan& plan = {});

}  // namespace labyrinth::vmm
