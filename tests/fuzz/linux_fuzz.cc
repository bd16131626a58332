// tests/fuzz/linux_fuzz.cc — untrusted Linux kernel images (bzImage setup header or an
// ELF vmlinux) through parse_linux_kernel(), plan_linux_boot() and load_linux() into
// real GuestMemory laid out as a 64 MiB VM.
//
// Input: two control bytes (initramfs size in pages, odd: plus one byte; command line
// length / 2), then the image.
// Invariants: a rejected image, plan or load fails with a typed error — a BootError
// that names a known configuration key in one printable line, or an Error — and never
// crashes; an accepted kernel is self-consistent (bzImage: protocol >= 2.12, the setup
// area and the header inside the file, entry = load + 0x200, the payload fits its
// footprint; vmlinux: every segment's bytes inside the file, filesz <= memsz); an
// accepted plan keeps the kernel at or above 1 MiB and inside low RAM, the command line
// within the kernel's limit, and the initramfs page-aligned, below initrd_addr_max and
// low RAM's end, clear of the kernel; a load of an accepted plan succeeds and leaves
// the payload (or each segment) at its address, the command line NUL-terminated at
// 0x20000 and boot_params pointing at both.
#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "guest/abi/boot_info.h"
#include "tests/fuzz/boot_fuzz.h"
#include "tests/fuzz/fuzz_check.h"
#include "vmm/boot/byte_fields.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace {

namespace vmm = labyrinth::vmm;
namespace fuzz = labyrinth::fuzz;

using fuzz::check_boot_error;
using vmm::get;

bool overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
  return a < b + b_len && b < a + a_len;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const fuzz::BootVm v = fuzz::make_boot_vm(64ull << 20, 32ull << 20);
  const uint64_t initrd_size = uint64_t{data[0]} * 4096 + (data[0] & 1);  // 0..~1 MiB
  const std::string cmdline(data[1] * 2u, 'c');                           // 0..510 bytes
  const auto image = std::as_bytes(std::span(data + 2, size - 2));

  auto kernel = vmm::parse_linux_kernel(image);
  if (!kernel) {
    check_boot_error(kernel.error());
    FUZZ_CHECK(kernel.error().field == "boot-source.kernel_image_path", "parse blamed %s",
               kernel.error().field.c_str());
    return 0;
  }
  const vmm::LinuxKernel& k = *kernel;
  if (k.format == vmm::KernelFormat::bzimage) {
    FUZZ_CHECK(vmm::is_linux_kernel(image), "accepted a bzImage is_linux_kernel() refuses");
    FUZZ_CHECK(k.protocol >= vmm::kMinBootProtocol, "protocol %#x", k.protocol);
    FUZZ_CHECK(k.header_end <= k.setup_bytes && k.setup_bytes <= image.size(),
               "header end %#llx, setup %#llx, file %zu", (unsigned long long)k.header_end,
               (unsigned long long)k.setup_bytes, image.size());
    FUZZ_CHECK(k.entry_gpa == k.load_gpa + 0x200, "entry %#llx, load %#llx",
               (unsigned long long)k.entry_gpa, (unsigned long long)k.load_gpa);
    FUZZ_CHECK(k.footprint >= image.size() - k.setup_bytes, "footprint below the payload");
  } else {
    FUZZ_CHECK(!k.segments.empty(), "a vmlinux without segments");
    for (const Elf64_Phdr& ph : k.segments) {
      FUZZ_CHECK(ph.p_filesz <= ph.p_memsz && ph.p_offset <= image.size() &&
                     ph.p_filesz <= image.size() - ph.p_offset,
                 "segment bytes outside the file");
      FUZZ_CHECK(ph.p_paddr >= k.load_gpa && ph.p_paddr - k.load_gpa <= k.footprint &&
                     ph.p_memsz <= k.footprint - (ph.p_paddr - k.load_gpa),
                 "segment outside the footprint");
    }
  }
  FUZZ_CHECK(k.load_gpa >= LABYRINTH_GUEST_LOAD_MIN, "kernel loads at %#llx, below 1 MiB",
             (unsigned long long)k.load_gpa);

  auto plan = vmm::plan_linux_boot(k, v.layout, initrd_size, cmdline);
  if (!plan) {
    check_boot_error(plan.error());
    return 0;
  }
  const uint64_t low_end = v.layout.ram.front().end();
  FUZZ_CHECK(k.load_gpa + k.footprint <= low_end, "kernel beyond low RAM");
  FUZZ_CHECK(cmdline.size() <= k.cmdline_max, "command line over the kernel's limit");
  FUZZ_CHECK(plan->initrd_size == initrd_size, "plan changed the initramfs size");
  if (initrd_size != 0) {
    FUZZ_CHECK(plan->initrd_gpa % 4096 == 0 && plan->initrd_gpa >= LABYRINTH_GUEST_LOAD_MIN &&
                   plan->initrd_gpa + initrd_size <= std::min(low_end, k.initrd_max_end),
               "initramfs at %#llx+%#llx", (unsigned long long)plan->initrd_gpa,
               (unsigned long long)initrd_size);
    FUZZ_CHECK(!overlaps(plan->initrd_gpa, initrd_size, k.load_gpa, k.footprint),
               "initramfs overlaps the kernel");
  }

  const std::vector<std::byte> initrd(initrd_size, std::byte{0x1D});
  auto loaded = vmm::load_linux(image, k, *plan, initrd, cmdline, *v.memory, v.layout);
  FUZZ_CHECK(loaded.has_value(), "load of an accepted plan failed: %d",
             static_cast<int>(loaded.error()));
  const vmm::GuestMemory& mem = *v.memory;
  if (k.format == vmm::KernelFormat::bzimage) {
    const auto payload = image.subspan(k.setup_bytes);
    auto at = mem.translate(k.load_gpa, payload.size());
    FUZZ_CHECK(at && std::ranges::equal(*at, payload), "payload not at the load address");
  } else {
    for (const Elf64_Phdr& ph : k.segments) {
      auto at = mem.translate(ph.p_paddr, ph.p_memsz);
      FUZZ_CHECK(at.has_value(), "segment not in RAM");
      FUZZ_CHECK(
          std::ranges::equal(at->first(ph.p_filesz), image.subspan(ph.p_offset, ph.p_filesz)),
          "segment bytes not at p_paddr (segments overlap?)");
    }
  }
  auto line = mem.translate(vmm::kLinuxCmdlineGpa, cmdline.size() + 1);
  FUZZ_CHECK(line && std::memcmp(line->data(), cmdline.data(), cmdline.size()) == 0 &&
                 (*line)[cmdline.size()] == std::byte{0},
             "command line");
  auto zero_page = mem.translate(vmm::kLinuxBootParamsGpa, 4096);
  FUZZ_CHECK(zero_page.has_value(), "boot_params");
  FUZZ_CHECK(get<uint32_t>(*zero_page, 0x228) == vmm::kLinuxCmdlineGpa, "cmd_line_ptr");
  FUZZ_CHECK(get<uint32_t>(*zero_page, 0x218) == (initrd_size ? plan->initrd_gpa : 0) &&
                 get<uint32_t>(*zero_page, 0x21C) == initrd_size,
             "ramdisk_image/size");
  if (initrd_size != 0) {
    auto rd = mem.translate(plan->initrd_gpa, initrd_size);
    FUZZ_CHECK(rd && std::ranges::all_of(*rd, [](std::byte b) { return b == std::byte{0x1D}; }),
               "initramfs bytes (overwritten by the kernel or a boot structure?)");
  }
  return 0;
}
