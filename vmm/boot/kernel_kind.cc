#include "vmm/boot/kernel_kind.h"

#include <elf.h>

#include <cstring>
#include <string>

#include "vmm/boot/multiboot_loader.h"

namespace labyrinth::vmm {

std::string_view to_string(KernelKind k) noexcept {
  switch (k) {
    case KernelKind::labyrinth_elf:
      return "Labyrinth test guest (ELF64)";
    case KernelKind::linux:
      return "Linux kernel";
    case KernelKind::multiboot:
      return "Multiboot kernel";
  }
  return "?";
}

std::expected<KernelKind, BootError> kernel_kind(std::span<const std::byte> image,
                                                 std::string_view path) {
  if (is_linux_kernel(image)) return KernelKind::linux;
  if (is_multiboot_kernel(image)) return KernelKind::multiboot;
  const bool elf = image.size() > EI_CLASS && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
  if (elf && std::to_integer<uint8_t>(image[EI_CLASS]) == ELFCLASS64) {
    return KernelKind::labyrinth_elf;
  }
  const std::string file = "\"" + std::string(path) + "\" ";
  return std::unexpected(BootError{
      "boot-source.kernel_image_path",
      elf ? file + "is an ELF32 file without a Multiboot header (magic 0x1badb002 in the first "
                   "8 KiB)"
          : file + "is none of the kernels Labyrinth boots: not an ELF64 test guest, not a "
                   "Linux bzImage (no \"HdrS\" at 0x202), not a Multiboot kernel (no magic "
                   "0x1badb002 in the first 8 KiB)"});
}

}  // namespace labyrinth::vmm
