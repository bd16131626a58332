// Debian's stock kernel (guest/linux/fetch_kernel.sh; the ctest fixture linux_kernel
// downloads it into build/vm/linux-guest/ first): the loader takes it as it is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "vmm/boot/elf_loader.h"
#include "vmm/boot/kernel_kind.h"
#include "vmm/boot/linux_loader.h"

namespace labyrinth::vmm {
namespace {

FileBytes debian_kernel(const std::string& path = LABYRINTH_LINUX_KERNEL) {
  auto bytes = read_file(path);
  EXPECT_TRUE(bytes.has_value()) << path
                                 << " is missing: run guest/linux/fetch_kernel.sh (the ctest "
                                    "fixture linux_fetch_kernel does)";
  return bytes ? *bytes : FileBytes{};
}

TEST(DebianKernel, SetupHeaderIsAcceptedAndLoaded) {
  auto image = debian_kernel();
  ASSERT_FALSE(image.empty());
  ASSERT_TRUE(is_linux_kernel(image));
  auto k = parse_linux_kernel(image);
  ASSERT_TRUE(k.has_value()) << k.error().message();
  EXPECT_EQ(k->format, KernelFormat::bzimage);
  EXPECT_GE(k->protocol, kMinBootProtocol);
  EXPECT_EQ(k->load_gpa % (2 * kMiB), 0u);
  EXPECT_GE(k->load_gpa, 16 * kMiB);
  EXPECT_EQ(k->entry_gpa, k->load_gpa + 0x200);
  EXPECT_GE(k->footprint, image.size() - k->setup_bytes);
  EXPECT_GE(k->cmdline_max, 2047u);

  auto layout = MemoryLayout::compute(256 * kMiB, 32 * kMiB).value();
  auto memory = GuestMemory::create(layout.ram).value();
  std::vector<std::byte> initrd(1 << 20, std::byte{0x42});
  const std::string cmdline = "console=ttyS0 reboot=k panic=-1";
  auto plan = plan_linux_boot(*k, layout, initrd.size(), cmdline);
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_GE(plan->initrd_gpa, k->load_gpa + k->footprint);
  ASSERT_TRUE(load_linux(image, *k, *plan, initrd, cmdline, *memory, layout).has_value());
  // startup_64 is where the protected-mode kernel's bytes start + 0x200.
  auto entry = memory->translate(k->entry_gpa, 16).value();
  EXPECT_EQ(std::memcmp(entry.data(), image.data() + k->setup_bytes + 0x200, 16), 0);

  // A command line longer than the kernel's cmdline_size is refused, naming the field.
  auto too_long = plan_linux_boot(*k, layout, 0, std::string(k->cmdline_max + 1, 'x'));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_EQ(too_long.error().field, "boot-source.boot_args");
  // The kernel decompresses in place: it needs init_size (~64 MiB) from 16 MiB.
  auto tiny = MemoryLayout::compute(64 * kMiB, 0).value();
  auto no_room = plan_linux_boot(*k, tiny, 0, "");
  ASSERT_FALSE(no_room.has_value());
  EXPECT_EQ(no_room.error().field, "machine-config.mem_size_mib");
  // An initramfs larger than what 128 MiB of RAM has left above that footprint.
  auto small = MemoryLayout::compute(128 * kMiB, 0).value();
  auto big_initrd = plan_linux_boot(*k, small, 64 * kMiB, "");
  ASSERT_FALSE(big_initrd.has_value());
  EXPECT_EQ(big_initrd.error().field, "boot-source.initrd_path");
}

// The same kernel unpacked (fetch_kernel.sh --vmlinux): a Linux kernel by its entry
// segment, though its per-CPU segment is linked at 0; loaded at its p_paddr, entered at
// e_entry = startup_64, 16 MiB.
TEST(DebianKernel, UnpackedVmlinuxIsLinuxAndLoadsAtItsPhysicalAddresses) {
  auto image = debian_kernel(LABYRINTH_LINUX_VMLINUX);
  ASSERT_FALSE(image.empty());
  auto kind = kernel_kind(image, LABYRINTH_LINUX_VMLINUX);
  ASSERT_TRUE(kind.has_value()) << kind.error().message();
  EXPECT_EQ(*kind, KernelKind::linux);
  auto k = parse_linux_kernel(image);
  ASSERT_TRUE(k.has_value()) << k.error().message();
  EXPECT_EQ(k->format, KernelFormat::vmlinux);
  EXPECT_EQ(k->load_gpa, 16 * kMiB);
  EXPECT_EQ(k->entry_gpa, 16 * kMiB);
  EXPECT_TRUE(std::any_of(k->segments.begin(), k->segments.end(), [](const Elf64_Phdr& ph) {
    return ph.p_vaddr == 0;
  })) << "the per-CPU segment";

  auto layout = MemoryLayout::compute(256 * kMiB, 32 * kMiB).value();
  auto memory = GuestMemory::create(layout.ram).value();
  auto plan = plan_linux_boot(*k, layout, 0, "console=ttyS0");
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  ASSERT_TRUE(load_linux(image, *k, *plan, {}, "console=ttyS0", *memory, layout).has_value());
  for (const auto& ph : k->segments) {
    auto at = memory->translate(ph.p_paddr, 64).value();
    EXPECT_EQ(
        std::memcmp(at.data(), image.data() + ph.p_offset, std::min<uint64_t>(64, ph.p_filesz)), 0)
        << std::hex << ph.p_paddr;
  }
}

}  // namespace
}  // namespace labyrinth::vmm
