// tests/fuzz/multiboot_fuzz.cc — untrusted Multiboot v1 kernels (header in the first
// 8 KiB, ELF32 container) through parse_multiboot_kernel(), plan_multiboot_boot() and
// load_multiboot() into real GuestMemory laid out as a 64 MiB VM.
//
// Input: two control bytes (module size in pages, odd: plus one byte, 0: no module;
// command line length / 2), then the image.
// Invariants: a rejected kernel or plan fails with a BootError naming a known
// configuration key in one printable line, never a crash; an accepted kernel has a
// header whose checksum holds and no unsupported requirement bit, every segment's bytes
// inside the file and filesz <= memsz, segments below 4 GiB and not overlapping, the
// entry inside a segment; an accepted plan keeps every segment at or above 1 MiB and
// inside low RAM and the module page aligned above the kernel and inside low RAM; a
// load of an accepted plan succeeds and leaves each segment's bytes at p_paddr (then
// zeroes), the module and the boot information pointing at the command line.
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
#include "vmm/boot/multiboot_loader.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace {

namespace vmm = labyrinth::vmm;
namespace fuzz = labyrinth::fuzz;

using fuzz::check_boot_error;
using vmm::get;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const fuzz::BootVm v = fuzz::make_boot_vm(64ull << 20, 0);
  const uint64_t module_size = uint64_t{data[0]} * 4096 + (data[0] & 1);  // 0..~1 MiB
  const std::string module_name = data[0] != 0 ? "env" : "";
  const std::string cmdline(data[1] * 2u, 'c');
  const auto image = std::as_bytes(std::span(data + 2, size - 2));

  auto kernel = vmm::parse_multiboot_kernel(image);
  if (!kernel) {
    check_boot_error(kernel.error());
    FUZZ_CHECK(kernel.error().field == "boot-source.kernel_image_path", "parse blamed %s",
               kernel.error().field.c_str());
    return 0;
  }
  const vmm::MultibootKernel& k = *kernel;
  FUZZ_CHECK(vmm::is_multiboot_kernel(image), "accepted a kernel is_multiboot_kernel() refuses");
  FUZZ_CHECK(k.header_offset % 4 == 0 && k.header_offset + 12 <= vmm::kMultibootSearchBytes,
             "header at %u", k.header_offset);
  FUZZ_CHECK(
      get<uint32_t>(image, k.header_offset) + k.flags + get<uint32_t>(image, k.header_offset + 8) ==
          0,
      "checksum");
  FUZZ_CHECK((k.flags & 0xFFFC) == 0, "unsupported requirement bits %#x", k.flags);
  FUZZ_CHECK(!k.segments.empty(), "no segments");
  bool entry_inside = false;
  for (size_t i = 0; i < k.segments.size(); ++i) {
    const Elf32_Phdr& ph = k.segments[i];
    FUZZ_CHECK(ph.p_filesz <= ph.p_memsz && uint64_t{ph.p_offset} + ph.p_filesz <= image.size(),
               "segment bytes outside the file");
    FUZZ_CHECK(uint64_t{ph.p_paddr} + ph.p_memsz <= (1ull << 32), "segment past 4 GiB");
    for (size_t j = 0; j < i; ++j) {
      const Elf32_Phdr& o = k.segments[j];
      FUZZ_CHECK(uint64_t{ph.p_paddr} + ph.p_memsz <= o.p_paddr ||
                     uint64_t{o.p_paddr} + o.p_memsz <= ph.p_paddr,
                 "segments overlap");
    }
    entry_inside |= k.entry >= ph.p_paddr && k.entry - ph.p_paddr < ph.p_memsz;
  }
  FUZZ_CHECK(entry_inside, "entry %#x outside the segments", k.entry);

  auto plan = vmm::plan_multiboot_boot(k, v.layout, module_size, cmdline, module_name);
  if (!plan) {
    check_boot_error(plan.error());
    return 0;
  }
  const uint64_t low_end = v.layout.ram.front().end();
  // Every segment in [4 KiB, EBDA) or [1 MiB, low RAM end); the boot information block
  // clear of all of them, and the module clear of the block.
  for (const Elf32_Phdr& ph : k.segments) {
    const uint64_t end = uint64_t{ph.p_paddr} + ph.p_memsz;
    const bool low = ph.p_paddr >= 0x1000 && end <= 0x9FC00;
    const bool high = ph.p_paddr >= LABYRINTH_GUEST_LOAD_MIN && end <= low_end;
    FUZZ_CHECK(low || high, "segment %#x+%#x outside [4 KiB, EBDA) and [1 MiB, low RAM end)",
               ph.p_paddr, ph.p_memsz);
    FUZZ_CHECK(end <= plan->block || ph.p_paddr >= plan->block + vmm::kMbBlockBytes,
               "segment %#x+%#x overlaps the boot information at %#llx", ph.p_paddr, ph.p_memsz,
               (unsigned long long)plan->block);
  }
  // Neither the block nor the module reaches into [EBDA, 1 MiB), which is not RAM.
  const auto clear_of_bios = [](uint64_t at, uint64_t bytes) {
    return at >= LABYRINTH_GUEST_LOAD_MIN || at + bytes <= 0x9FC00;
  };
  FUZZ_CHECK(plan->block % 4096 == 0 && plan->block + vmm::kMbBlockBytes <= low_end &&
                 clear_of_bios(plan->block, vmm::kMbBlockBytes),
             "boot information at %#llx", (unsigned long long)plan->block);
  if (!module_name.empty()) {
    FUZZ_CHECK(plan->module_gpa % 4096 == 0 && plan->module_gpa >= k.load_end &&
                   (plan->module_gpa >= plan->block + vmm::kMbBlockBytes ||
                    plan->module_gpa + module_size < plan->block) &&
                   plan->module_gpa + module_size < low_end &&
                   clear_of_bios(plan->module_gpa, module_size + 1),
               "module at %#llx", (unsigned long long)plan->module_gpa);
  }

  const std::vector<std::byte> module(module_size, std::byte{0x1D});
  auto loaded =
      vmm::load_multiboot(image, k, *plan, module, cmdline, module_name, *v.memory, v.layout);
  FUZZ_CHECK(loaded.has_value(), "load of an accepted plan failed: %d",
             static_cast<int>(loaded.error()));
  const vmm::GuestMemory& mem = *v.memory;
  for (const Elf32_Phdr& ph : k.segments) {
    auto at = mem.translate(ph.p_paddr, ph.p_memsz);
    FUZZ_CHECK(at.has_value(), "segment not in RAM");
    FUZZ_CHECK(std::ranges::equal(at->first(ph.p_filesz), image.subspan(ph.p_offset, ph.p_filesz)),
               "segment bytes not at p_paddr");
    FUZZ_CHECK(std::ranges::all_of(at->subspan(ph.p_filesz),
                                   [](std::byte b) { return b == std::byte{0}; }),
               ".bss not zeroed");
  }
  if (!module_name.empty()) {
    auto rd = mem.translate(plan->module_gpa, module_size + 1);
    FUZZ_CHECK(rd &&
                   std::ranges::all_of(rd->first(module_size),
                                       [](std::byte b) { return b == std::byte{0x1D}; }) &&
                   (*rd)[module_size] == std::byte{0},
               "module bytes");
  }
  auto mbi = mem.translate(plan->at(vmm::kMbInfoGpa), 116);
  FUZZ_CHECK(mbi && get<uint32_t>(*mbi, 16) == plan->at(vmm::kMbCmdlineGpa), "mbi cmdline");
  auto line = mem.translate(plan->at(vmm::kMbCmdlineGpa), cmdline.size() + 1);
  FUZZ_CHECK(line && std::memcmp(line->data(), cmdline.data(), cmdline.size()) == 0 &&
                 (*line)[cmdline.size()] == std::byte{0},
             "command line");
  return 0;
}
