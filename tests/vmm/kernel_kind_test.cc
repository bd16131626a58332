#include "vmm/boot/kernel_kind.h"

#include <gtest/gtest.h>

#include "tests/vmm/test_bzimage.h"
#include "tests/vmm/test_elf.h"
#include "tests/vmm/test_multiboot.h"

namespace labyrinth::vmm {
namespace {

TEST(KernelKind, TellsTheThreeKindsApart) {
  EXPECT_EQ(kernel_kind(testing::TestElf::with_code({0x90}).bytes(), "g"),
            KernelKind::labyrinth_elf);
  EXPECT_EQ(kernel_kind(testing::TestBzImage().bytes(), "b"), KernelKind::linux);
  EXPECT_EQ(kernel_kind(testing::TestMultiboot::with_code({0x90}).bytes(), "m"),
            KernelKind::multiboot);
  // A bad checksum still claims Multiboot: its loader then names the checksum.
  auto mb = testing::TestMultiboot::with_code({0x90});
  mb.checksum = 0;
  EXPECT_EQ(kernel_kind(mb.bytes(), "m"), KernelKind::multiboot);
}

TEST(KernelKind, AnythingElseIsAnErrorNamingTheField) {
  const std::vector<std::byte> text(100, std::byte{'x'});
  auto r = kernel_kind(text, "/k.txt");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field, "boot-source.kernel_image_path");
  EXPECT_EQ(r.error().detail.rfind("\"/k.txt\" is none of the kernels Labyrinth boots", 0), 0u)
      << r.error().detail;
  EXPECT_FALSE(kernel_kind({}, "/empty").has_value());
  // An ELF32 without a Multiboot header (e.g. a .flat whose header was lost).
  auto mb = testing::TestMultiboot::with_code({0x90});
  mb.magic = 0x12345678;
  auto e32 = kernel_kind(mb.bytes(), "/k.elf");
  ASSERT_FALSE(e32.has_value());
  EXPECT_NE(e32.error().detail.find("ELF32 file without a Multiboot header"), std::string::npos);
}

}  // namespace
}  // namespace labyrinth::vmm
