// vmm/boot/linux_loader.h — boots a stock Linux kernel by the x86 64-bit boot protocol.
//
// Two image formats (Documentation/arch/x86/boot.rst):
//   * bzImage: the setup header at 0x1F1 ("HdrS" at 0x202) is read and validated —
//     boot protocol >= 2.12 (xloadflags, 64-bit entry), loadflags LOADED_HIGH,
//     XLF_KERNEL_64, kernel_alignment, relocatable_kernel, init_size, cmdline_size,
//     initrd_addr_max, and that the file holds the syssize bytes the header promises.
//     The protected-mode kernel goes to pref_address (aligned to kernel_alignment) and
//     is entered at startup_64 = load address + 0x200.
//   * an uncompressed ELF vmlinux (the PT_LOAD segment holding e_entry, a physical
//     address, is linked in the kernel's high half, p_vaddr >= 0xFFFFFFFF80000000; the
//     per-CPU segment is linked at 0): segments go to p_paddr, entry e_entry (startup_64).
//     guest/linux/fetch_kernel.sh --vmlinux unpacks one from Debian's bzImage.
// Everything the kernel reads is untrusted input; every offset is bounds-checked.
//
// Guest low memory for a Linux boot (all below the first 640 KiB of RAM):
//   0x0500  GDT: 0x10 __BOOT_CS (64-bit code), 0x18 __BOOT_DS (data), 0x20 TSS
//   0x7000  boot_params (the "zero page") with the e820 map
//   0x10000 identity page tables (boot_setup.h), first 4 GiB
//   0x20000 command line
//   0x9FC00 MP table (mptable.h), reserved up to 1 MiB
// The initramfs goes to the top of low RAM below initrd_addr_max, above the kernel's
// init_size footprint.
//
//   auto kernel = parse_linux_kernel(bytes);              // BootError names the field
//   auto plan = plan_linux_boot(*kernel, layout, initrd.size(), cmdline);
//   load_linux(bytes, *kernel, *plan, initrd, cmdline, *memory, layout);
//   bsp->set_sregs(linux_sregs(bsp->sregs().value()));
//   bsp->set_regs(linux_regs(kernel->entry_gpa));        // RSI = boot_params
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/boot/elf_loader.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace labyrinth::vmm {

// A rejected kernel, initramfs or command line: the configuration key it came from
// and what is wrong, naming the header field ("setup header version 2.10, need >= 2.12").
struct BootError {
  std::string field;  // "boot-source.kernel_image_path", "boot-source.boot_args", ...
  std::string detail;
  std::string message() const { return field + ": " + detail; }
};

enum class KernelFormat : uint8_t { bzimage, vmlinux };

struct LinuxKernel {
  KernelFormat format = KernelFormat::bzimage;
  uint16_t protocol = 0;             // bzImage: 0x020F = 2.15; vmlinux: 0
  uint64_t setup_bytes = 0;          // bzImage: (setup_sects + 1) * 512, where the kernel starts
  uint64_t header_end = 0;           // bzImage: one past the setup header (0x202 + byte at 0x201)
  uint64_t load_gpa = 0;             // the 64-bit kernel's first byte
  uint64_t entry_gpa = 0;            // startup_64
  uint64_t footprint = 0;            // bytes from load_gpa the kernel may use while booting
  uint32_t cmdline_max = 0;          // longest command line, without the NUL
  uint64_t initrd_max_end = 0;       // the initramfs must end at or below this address
  std::vector<Elf64_Phdr> segments;  // vmlinux: the PT_LOAD segments
};

// Where the pieces go.
struct LinuxBootPlan {
  uint64_t initrd_gpa = 0;
  uint64_t initrd_size = 0;
};

// Fixed low-memory addresses (see the header comment).
inline constexpr uint64_t kLinuxGdtGpa = 0x500;
inline constexpr uint64_t kLinuxTssGpa = 0x540;
inline constexpr uint64_t kLinuxBootParamsGpa = 0x7000;
inline constexpr uint64_t kLinuxCmdlineGpa = 0x20000;
inline constexpr uint64_t kLinuxCmdlineMax = 0x10000 - 1;  // the area below 0x30000
inline constexpr uint64_t kLinuxEbdaGpa = 0x9FC00;         // RAM below is usable
inline constexpr uint16_t kLinuxBootCs = 0x10, kLinuxBootDs = 0x18, kLinuxTss = 0x20;
inline constexpr uint16_t kMinBootProtocol = 0x020C;  // 2.12: xloadflags, 64-bit entry

// A bzImage ("HdrS" at 0x202) or an ELF whose PT_LOAD segments sit in the kernel's high
// half. A Labyrinth test guest (identity-linked ELF) is neither.
bool is_linux_kernel(std::span<const std::byte> image);

// Reads and validates the image. Errors name boot-source.kernel_image_path.
std::expected<LinuxKernel, BootError> parse_linux_kernel(std::span<const std::byte> image);

// Checks the kernel's footprint, the command line and the initramfs against the kernel's
// limits and the memory map; chooses the initramfs address.
std::expected<LinuxBootPlan, BootError> plan_linux_boot(const LinuxKernel& kernel,
                                                        const MemoryLayout& layout,
                                                        uint64_t initrd_size,
                                                        std::string_view cmdline);

// Writes kernel, initramfs, command line, boot_params (e820 map), GDT, TSS and the
// identity page tables. The plan must come from plan_linux_boot for the same inputs.
std::expected<void, Error> load_linux(std::span<const std::byte> image, const LinuxKernel& kernel,
                                      const LinuxBootPlan& plan, std::span<const std::byte> initrd,
                                      std::string_view cmdline, const GuestMemory& memory,
                                      const MemoryLayout& layout);

// The e820 map Linux gets: RAM below the EBDA, reserved to 1 MiB, RAM to the MMIO gap,
// the gap reserved, RAM above 4 GiB, the page-pool window reserved.
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // 1 RAM, 2 reserved
};
inline constexpr uint32_t kE820Ram = 1, kE820Reserved = 2;
std::vector<E820Entry> linux_e820(const MemoryLayout& layout);

// The zero page alone (exposed for tests): setup header copied from a bzImage, loader
// fields, initramfs, command line pointer and the e820 table.
std::vector<std::byte> make_boot_params(std::span<const std::byte> image, const LinuxKernel& kernel,
                                        const LinuxBootPlan& plan, const MemoryLayout& layout);

// 64-bit state at startup_64: CS 0x10, DS/ES/SS 0x18, TR 0x20, paging on the identity
// map, EFER.LME|LMA, interrupts off.
kvm_sregs linux_sregs(kvm_sregs base);
// RIP = entry, RSI = boot_params, RFLAGS = 2.
kvm_regs linux_regs(uint64_t entry);

}  // namespace labyrinth::vmm
