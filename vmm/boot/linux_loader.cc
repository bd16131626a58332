#include "vmm/boot/linux_loader.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/byte_fields.h"

namespace labyrinth::vmm {

namespace {

// Setup header offsets (in the bzImage file and in boot_params alike).
constexpr uint64_t kSetupSects = 0x1F1, kSyssize = 0x1F4, kBootFlag = 0x1FE, kJump = 0x200,
                   kHeaderMagic = 0x202, kVersion = 0x206, kTypeOfLoader = 0x210,
                   kLoadflags = 0x211, kCode32Start = 0x214, kRamdiskImage = 0x218,
                   kRamdiskSize = 0x21C, kCmdLinePtr = 0x228, kInitrdAddrMax = 0x22C,
                   kKernelAlignment = 0x230, kRelocatable = 0x234, kXloadflags = 0x236,
                   kCmdlineSize = 0x238, kPrefAddress = 0x258, kInitSize = 0x260;
// boot_params fields outside the setup header.
constexpr uint64_t kAcpiRsdpAddr = 0x070, kExtRamdiskImage = 0x0C0, kExtRamdiskSize = 0x0C4,
                   kExtCmdLinePtr = 0x0C8, kE820Entries = 0x1E8, kE820Table = 0x2D0;
constexpr uint64_t kSetupHeaderEnd = 0x290;
constexpr size_t kE820Max = 128, kE820EntryBytes = 20, kBootParamsBytes = 4096;
constexpr uint64_t kSetupHeaderMin = kInitSize + 4;  // the 2.12 header ends past init_size
constexpr uint8_t kLoadedHigh = 0x01;
constexpr uint16_t kXlfKernel64 = 0x01;
constexpr uint64_t kKernelHighHalf = 0xFFFFFFFF80000000ull;

std::unexpected<BootError> kernel_error(std::string detail) {
  return std::unexpected(BootError{"boot-source.kernel_image_path", std::move(detail)});
}

// A vmlinux: the segment holding the entry point (e_entry is physical, as in the
// kernel's own linker script: ENTRY(phys_startup_64)) is linked in the kernel's high half.
// Other segments need not be: x86-64's per-CPU area (.data..percpu) is linked at virtual
// address 0 and loaded at its p_paddr like the rest.
bool is_vmlinux(std::span<const std::byte> image, ElfImage* out) {
  auto elf = parse_elf(image);
  if (!elf) return false;
  const bool high = std::any_of(elf->loads.begin(), elf->loads.end(), [&](const Elf64_Phdr& ph) {
    return ph.p_vaddr >= kKernelHighHalf && elf->entry >= ph.p_paddr &&
           elf->entry - ph.p_paddr < ph.p_memsz;
  });
  if (high && out != nullptr) *out = std::move(*elf);
  return high;
}

std::expected<LinuxKernel, BootError> parse_vmlinux(std::span<const std::byte> image) {
  auto elf = parse_elf(image);
  if (!elf) return kernel_error(std::string("ELF vmlinux: ") + elf.error().why);
  LinuxKernel k;
  k.format = KernelFormat::vmlinux;
  k.entry_gpa = elf->entry;
  k.load_gpa = UINT64_MAX;
  uint64_t end = 0;
  for (const auto& ph : elf->loads) {
    k.load_gpa = std::min(k.load_gpa, ph.p_paddr);
    end = std::max(end, ph.p_paddr + ph.p_memsz);  // no overflow: parse_elf checked
  }
  if (k.load_gpa < LABYRINTH_GUEST_LOAD_MIN) {
    return kernel_error(fmt::format("ELF vmlinux: p_paddr {:#x} is below 1 MiB", k.load_gpa));
  }
  k.footprint = end - k.load_gpa;
  k.cmdline_max = 2047;              // COMMAND_LINE_SIZE of x86 kernels since 2.6.
  k.initrd_max_end = 0x80000000ull;  // the conservative default of the boot protocol
  k.segments = std::move(elf->loads);
  return k;
}

}  // namespace

bool is_linux_kernel(std::span<const std::byte> image) {
  if (image.size() >= kHeaderMagic + 4 &&
      std::memcmp(image.data() + kHeaderMagic, "HdrS", 4) == 0) {
    return true;
  }
  return is_vmlinux(image, nullptr);
}

std::expected<LinuxKernel, BootError> parse_linux_kernel(std::span<const std::byte> image) {
  if (is_vmlinux(image, nullptr)) return parse_vmlinux(image);
  if (image.size() < kHeaderMagic + 4 || std::memcmp(image.data() + kHeaderMagic, "HdrS", 4) != 0) {
    return kernel_error("not a Linux kernel: no \"HdrS\" setup header magic at 0x202");
  }
  if (image.size() < kSetupHeaderMin) {
    return kernel_error(fmt::format("truncated: {} bytes, shorter than the setup header ({:#x})",
                                    image.size(), kSetupHeaderMin));
  }
  LinuxKernel k;
  k.format = KernelFormat::bzimage;
  k.protocol = get<uint16_t>(image, kVersion);
  if (k.protocol < kMinBootProtocol) {
    return kernel_error(fmt::format(
        "setup header version {}.{:02}: need boot protocol >= 2.12 (64-bit entry, xloadflags)",
        k.protocol >> 8, k.protocol & 0xFF));
  }
  if (get<uint16_t>(image, kBootFlag) != 0xAA55) {
    return kernel_error(fmt::format("setup header boot_flag {:#06x}: expected 0xaa55",
                                    get<uint16_t>(image, kBootFlag)));
  }
  k.header_end = kHeaderMagic + std::to_integer<uint8_t>(image[kJump + 1]);
  if (k.header_end < kSetupHeaderMin || k.header_end > image.size()) {
    return kernel_error(
        fmt::format("setup header length (jump at 0x200) ends at {:#x}, outside "
                    "[{:#x}, file size {:#x}]",
                    k.header_end, kSetupHeaderMin, image.size()));
  }
  uint64_t sects = std::to_integer<uint8_t>(image[kSetupSects]);
  if (sects == 0) sects = 4;  // the boot protocol's rule for a zero setup_sects
  k.setup_bytes = (sects + 1) * 512;
  const uint64_t syssize = uint64_t{get<uint32_t>(image, kSyssize)} * 16;
  if (image.size() <= k.setup_bytes || image.size() - k.setup_bytes < syssize) {
    return kernel_error(
        fmt::format("truncated: setup_sects {} and syssize promise {} bytes, the file has {}",
                    sects, k.setup_bytes + syssize, image.size()));
  }
  if ((std::to_integer<uint8_t>(image[kLoadflags]) & kLoadedHigh) == 0) {
    return kernel_error("setup header loadflags: LOADED_HIGH is clear (a zImage loaded at 64 KiB)");
  }
  if ((get<uint16_t>(image, kXloadflags) & kXlfKernel64) == 0) {
    return kernel_error("setup header xloadflags: XLF_KERNEL_64 is clear (no 64-bit entry point)");
  }
  const uint32_t align = get<uint32_t>(image, kKernelAlignment);
  if (align < kPage || !std::has_single_bit(align)) {
    return kernel_error(
        fmt::format("setup header kernel_alignment {:#x}: must be a power of two >= 4 KiB", align));
  }
  const uint64_t pref = get<uint64_t>(image, kPrefAddress);
  const bool relocatable = std::to_integer<uint8_t>(image[kRelocatable]) != 0;
  // A relocatable kernel may go anywhere kernel_alignment allows; pref_address is its own
  // choice and what QEMU and Firecracker use. A fixed one must sit at pref_address.
  k.load_gpa =
      relocatable ? align_up(std::max<uint64_t>(pref, LABYRINTH_GUEST_LOAD_MIN), align) : pref;
  if (k.load_gpa < LABYRINTH_GUEST_LOAD_MIN || k.load_gpa % kPage != 0) {
    return kernel_error(
        fmt::format("setup header pref_address {:#x} of a non-relocatable kernel (relocatable_"
                    "kernel 0) is below 1 MiB or not page aligned",
                    pref));
  }
  k.entry_gpa = k.load_gpa + 0x200;  // startup_64
  const uint64_t payload = image.size() - k.setup_bytes;
  k.footprint = std::max<uint64_t>(get<uint32_t>(image, kInitSize), payload);
  k.cmdline_max = get<uint32_t>(image, kCmdlineSize);
  if (k.cmdline_max == 0) return kernel_error("setup header cmdline_size is 0");
  k.initrd_max_end = uint64_t{get<uint32_t>(image, kInitrdAddrMax)} + 1;
  return k;
}

std::expected<LinuxBootPlan, BootError> plan_linux_boot(const LinuxKernel& kernel,
                                                        const MemoryLayout& layout,
                                                        uint64_t initrd_size,
                                                        std::string_view cmdline) {
  if (cmdline.size() > kernel.cmdline_max || cmdline.size() > kLinuxCmdlineMax) {
    return std::unexpected(BootError{
        "boot-source.boot_args",
        fmt::format("{} bytes: longer than the kernel accepts (setup header cmdline_size {})",
                    cmdline.size(), std::min<uint64_t>(kernel.cmdline_max, kLinuxCmdlineMax))});
  }
  const uint64_t low_end = layout.ram.front().end();
  uint64_t kernel_end = 0;
  if (__builtin_add_overflow(kernel.load_gpa, kernel.footprint, &kernel_end) ||
      kernel_end > low_end) {
    return std::unexpected(BootError{
        "machine-config.mem_size_mib",
        fmt::format("the kernel needs RAM up to {:#x} (loaded at {:#x}, setup header init_size "
                    "{} MiB), RAM below the MMIO gap ends at {:#x}",
                    kernel_end, kernel.load_gpa, kernel.footprint >> 20, low_end)});
  }
  LinuxBootPlan plan;
  plan.initrd_size = initrd_size;
  if (initrd_size == 0) return plan;
  const uint64_t top = std::min(low_end, kernel.initrd_max_end) / kPage * kPage;
  const uint64_t rounded = align_up(initrd_size, kPage);
  // Above the kernel only: a limit below its end (initrd_addr_max is the image's word)
  // leaves no room at all rather than a wrapped-around one.
  const uint64_t floor = align_up(kernel_end, kPage);
  if (initrd_size > top || top < floor || top - floor < rounded) {
    return std::unexpected(BootError{
        "boot-source.initrd_path",
        fmt::format("{} bytes do not fit between the kernel's end {:#x} and {:#x} (the lower of "
                    "RAM's end below the MMIO gap and setup header initrd_addr_max + 1)",
                    initrd_size, kernel_end, top)});
  }
  plan.initrd_gpa = top - rounded;
  return plan;
}

std::vector<E820Entry> linux_e820(const MemoryLayout& layout) {
  std::vector<E820Entry> e;
  const GpaRange& low = layout.ram.front();
  e.push_back({0, kLinuxEbdaGpa, kE820Ram});
  e.push_back({kLinuxEbdaGpa, LABYRINTH_GUEST_LOAD_MIN - kLinuxEbdaGpa, kE820Reserved});
  e.push_back({LABYRINTH_GUEST_LOAD_MIN, low.end() - LABYRINTH_GUEST_LOAD_MIN, kE820Ram});
  e.push_back(
      {LABYRINTH_MMIO_GAP_START, LABYRINTH_MMIO_GAP_END - LABYRINTH_MMIO_GAP_START, kE820Reserved});
  if (layout.ram.size() > 1) e.push_back({layout.ram[1].gpa, layout.ram[1].size, kE820Ram});
  if (layout.pool.size > 0) e.push_back({layout.pool.gpa, layout.pool.size, kE820Reserved});
  return e;
}

std::vector<std::byte> make_boot_params(std::span<const std::byte> image, const LinuxKernel& kernel,
                                        const LinuxBootPlan& plan, const MemoryLayout& layout) {
  std::vector<std::byte> zp(kBootParamsBytes, std::byte{0});
  std::span<std::byte> b(zp);
  if (kernel.format == KernelFormat::bzimage) {
    // The setup header as the kernel built it (parse_linux_kernel bounded header_end).
    // struct setup_header ends at 0x290 in boot_params; a longer one is not ours to copy.
    std::memcpy(zp.data() + kSetupSects, image.data() + kSetupSects,
                std::min(kernel.header_end, kSetupHeaderEnd) - kSetupSects);
  } else {
    // A vmlinux has no setup header: write the fields the kernel reads (as Firecracker).
    put<uint16_t>(b, kBootFlag, 0xAA55);
    std::memcpy(zp.data() + kHeaderMagic, "HdrS", 4);
    put<uint16_t>(b, kVersion, kMinBootProtocol);
    put<uint32_t>(b, kKernelAlignment, 0x1000000);
    put<uint32_t>(b, kCmdlineSize, kernel.cmdline_max);
  }
  b[kTypeOfLoader] = std::byte{0xFF};  // "undefined" loader
  b[kLoadflags] |= std::byte{kLoadedHigh};
  put<uint32_t>(b, kCode32Start, static_cast<uint32_t>(kernel.load_gpa));
  put<uint32_t>(b, kCmdLinePtr, static_cast<uint32_t>(kLinuxCmdlineGpa));
  put<uint32_t>(b, kExtCmdLinePtr, static_cast<uint32_t>(kLinuxCmdlineGpa >> 32));
  put<uint32_t>(b, kRamdiskImage, static_cast<uint32_t>(plan.initrd_gpa));
  put<uint32_t>(b, kExtRamdiskImage, static_cast<uint32_t>(plan.initrd_gpa >> 32));
  put<uint32_t>(b, kRamdiskSize, static_cast<uint32_t>(plan.initrd_size));
  put<uint32_t>(b, kExtRamdiskSize, static_cast<uint32_t>(plan.initrd_size >> 32));
  // Boot protocol 2.14+: where the RSDP is (the Machine writes the tables there); an older
  // kernel finds it by its scan of the BIOS area.
  put<uint64_t>(b, kAcpiRsdpAddr, kAcpiTablesGpa);
  const auto e820 = linux_e820(layout);  // at most 6 entries
  b[kE820Entries] = std::byte{static_cast<uint8_t>(std::min(e820.size(), kE820Max))};
  for (size_t i = 0; i < e820.size() && i < kE820Max; ++i) {
    const uint64_t off = kE820Table + i * kE820EntryBytes;
    put<uint64_t>(b, off, e820[i].addr);
    put<uint64_t>(b, off + 8, e820[i].size);
    put<uint32_t>(b, off + 16, e820[i].type);
  }
  return zp;
}

std::expected<void, Error> load_linux(std::span<const std::byte> image, const LinuxKernel& kernel,
                                      const LinuxBootPlan& plan, std::span<const std::byte> initrd,
                                      std::string_view cmdline, const GuestMemory& memory,
                                      const MemoryLayout& layout) {
  if (initrd.size() != plan.initrd_size || cmdline.size() > kernel.cmdline_max ||
      cmdline.size() > kLinuxCmdlineMax) {
    return std::unexpected(Error::boot_layout);  // not the plan for these inputs
  }
  // The kernel.
  if (kernel.format == KernelFormat::bzimage) {
    auto dst = memory.translate(kernel.load_gpa, kernel.footprint);
    if (!dst) return std::unexpected(dst.error());
    const auto payload = image.subspan(kernel.setup_bytes);  // footprint >= payload size
    std::memcpy(dst->data(), payload.data(), payload.size());
  } else {
    for (const auto& ph : kernel.segments) {
      if (auto r = copy_segment(image, ph, memory); !r) return r;
    }
  }
  // Initramfs and command line.
  if (!initrd.empty()) {
    if (auto r = memory.write(plan.initrd_gpa, initrd); !r) return r;
  }
  std::vector<std::byte> line(cmdline.size() + 1, std::byte{0});
  std::memcpy(line.data(), cmdline.data(), cmdline.size());
  if (auto r = memory.write(kLinuxCmdlineGpa, line); !r) return r;
  if (auto r = memory.write(kLinuxBootParamsGpa, make_boot_params(image, kernel, plan, layout));
      !r) {
    return r;
  }
  // GDT: null, null, __BOOT_CS, __BOOT_DS, TSS (two slots); an empty TSS.
  const std::array<uint64_t, 6> gdt = {0,
                                       0,
                                       gdt_entry(0xA09B, 0, 0xFFFFF),
                                       gdt_entry(0xC093, 0, 0xFFFFF),
                                       gdt_entry(0x008B, kLinuxTssGpa, 0x67),
                                       kLinuxTssGpa >> 32};
  if (auto r = memory.write_obj(kLinuxGdtGpa, gdt); !r) return r;
  std::array<uint8_t, 0x68> tss{};
  tss[0x66] = 0x68;
  if (auto r = memory.write_obj(kLinuxTssGpa, tss); !r) return r;
  spdlog::debug("linux: kernel at {:#x} (+{:#x}), entry {:#x}, initrd {:#x} (+{:#x})",
                kernel.load_gpa, kernel.footprint, kernel.entry_gpa, plan.initrd_gpa,
                plan.initrd_size);
  // Identity map of the first 4 GiB: kernel, boot_params, command line and initramfs.
  return write_identity_map(memory, LABYRINTH_MMIO_GAP_END);
}

kvm_sregs linux_sregs(kvm_sregs s) {
  return long_mode_sregs(s, LongModeLayout{kLinuxBootCs, kLinuxBootDs, kLinuxTss, kLinuxTssGpa,
                                           kLinuxGdtGpa, 6, kCr4Pae});
}

kvm_regs linux_regs(uint64_t entry) {
  kvm_regs r{};
  r.rip = entry;
  r.rsi = kLinuxBootParamsGpa;
  r.rflags = 0x2;
  return r;
}

}  // namespace labyrinth::vmm
