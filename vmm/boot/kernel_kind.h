// vmm/boot/kernel_kind.h — which of the three kinds of kernel a file is.
//
// boot-source.kernel_image_path names one of:
//   * a Linux kernel: a bzImage ("HdrS" at 0x202) or an ELF64 vmlinux whose entry segment
//     is linked in the kernel's high half (linux_loader.h);
//   * a Multiboot v1 kernel: the header magic 0x1BADB002 4-byte aligned in the first
//     8 KiB (multiboot_loader.h; kvm-unit-tests' .flat files);
//   * a Labyrinth test guest: any other ELF64 file (elf_loader.h checks it in full).
// Tried in that order; the kind says which loader reads the file, and that loader
// names what is wrong with it. Anything else is a BootError naming the field.
//
//   auto kind = kernel_kind(bytes, path);   // KernelKind::multiboot for x86/tsc.flat
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>

#include "vmm/boot/linux_loader.h"  // BootError

namespace labyrinth::vmm {

enum class KernelKind : uint8_t { labyrinth_elf, linux, multiboot };
std::string_view to_string(KernelKind k) noexcept;

// path only words the error.
std::expected<KernelKind, BootError> kernel_kind(std::span<const std::byte> image,
                                                 std::string_view path);

}  // namespace labyrinth::vmm
