// Real kvm-unit-tests kernels (x86/*.flat, built from ../shared/peers/ by the
// kvm_unit_tests_build fixture under the build tree) through the Multiboot loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "vmm/boot/byte_fields.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/boot/multiboot_loader.h"

namespace labyrinth::vmm {
namespace {

FileBytes flat(const std::string& name) {
  std::string why;
  auto bytes = read_file(std::string(LABYRINTH_KUT_DIR) + "/x86/" + name, &why);
  EXPECT_TRUE(bytes.has_value()) << why;
  return bytes ? *bytes : FileBytes{};
}

class KvmUnitTestsKernel : public ::testing::TestWithParam<const char*> {};

TEST_P(KvmUnitTestsKernel, LoadsAsTheSuiteExpects) {
  const auto image = flat(GetParam());
  ASSERT_GT(image.size(), sizeof(Elf32_Ehdr));
  EXPECT_TRUE(is_multiboot_kernel(image));
  EXPECT_FALSE(is_linux_kernel(image));
  auto k = parse_multiboot_kernel(image);
  ASSERT_TRUE(k.has_value()) << k.error().message();
  // cstart64.S: flags 0, the header first in .init; the ELF's own entry, identity linked.
  EXPECT_EQ(k->flags, 0u);
  EXPECT_EQ(get<uint32_t>(image, k->header_offset), kMultibootMagic);
  EXPECT_EQ(k->entry, get<uint32_t>(image, offsetof(Elf32_Ehdr, e_entry)));
  EXPECT_EQ(k->segments.size(), 2u) << "text, then data with .bss";
  EXPECT_EQ(k->load_low, 0x400000u + k->segments[0].p_offset) << "flat.lds: 4M + headers";

  // 16 MiB is too little for the suite's per-CPU stacks in .bss: a configuration error.
  auto small = MemoryLayout::compute(16 * kMiB, 0).value();
  auto no = plan_multiboot_boot(*k, small, 0, "x", "");
  ASSERT_FALSE(no.has_value());
  EXPECT_EQ(no.error().field, "machine-config.mem_size_mib");

  const auto layout = MemoryLayout::compute(128 * kMiB, 0).value();
  auto memory = GuestMemory::create(layout.ram).value();
  const std::string env = "NR_CPUS=1\nMEMSIZE=128\n";
  const auto module = std::as_bytes(std::span(env));
  const std::string line = multiboot_cmdline(std::string("x86/") + GetParam(), "");
  auto plan = plan_multiboot_boot(*k, layout, module.size(), line, "env");
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  ASSERT_TRUE(load_multiboot(image, *k, *plan, module, line, "env", *memory, layout));
  for (const auto& ph : k->segments) {
    auto mem = memory->translate(ph.p_paddr, ph.p_memsz).value();
    EXPECT_EQ(std::memcmp(mem.data(), image.data() + ph.p_offset, ph.p_filesz), 0);
    EXPECT_TRUE(std::all_of(mem.begin() + ph.p_filesz, mem.end(),
                            [](std::byte b) { return b == std::byte{0}; }));
  }
  // What setup_multiboot() and find_highmem() read: mem_upper, the module, the mmap.
  auto mbi = memory->translate(kMbInfoGpa, 116).value();
  EXPECT_EQ(get<uint32_t>(mbi, 8) * kKiB, 127 * kMiB);
  EXPECT_GT(get<uint32_t>(mbi, 8) * kKiB, k->load_end) << "phys_alloc_init(edata, ...) > 0";
  EXPECT_EQ(get<uint32_t>(mbi, 20), 1u);
  auto mods = memory->translate(get<uint32_t>(mbi, 24), 16).value();
  auto text =
      memory->translate(get<uint32_t>(mods, 0), get<uint32_t>(mods, 4) - get<uint32_t>(mods, 0));
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(text->data()), text->size()), env);
  EXPECT_GE(get<uint32_t>(mods, 0), k->load_end) << "the module is clear of .bss";
}

INSTANTIATE_TEST_SUITE_P(Flats, KvmUnitTestsKernel, ::testing::Values("tsc.flat", "smptest.flat"),
                         [](const auto& p) {
                           std::string n = p.param;
                           return n.substr(0, n.find('.'));
                         });

}  // namespace
}  // namespace labyrinth::vmm
