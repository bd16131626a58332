#include "vmm/boot/linux_loader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/vmm/test_bzimage.h"
#include "tests/vmm/test_elf.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/byte_fields.h"
#include "vmm/boot/kernel_kind.h"

namespace labyrinth::vmm {
namespace {

using testing::TestBzImage;

MemoryLayout layout_of(uint64_t ram, uint64_t pool = 32 * kMiB) {
  return MemoryLayout::compute(ram, pool).value();  // valid sizes
}

// The detail of a rejected image (and that the error names the kernel file).
std::string rejects(const TestBzImage& k) {
  auto r = parse_linux_kernel(k.bytes());
  EXPECT_FALSE(r.has_value());
  if (r) return "";
  EXPECT_EQ(r.error().field, "boot-source.kernel_image_path");
  return r.error().detail;
}

TEST(LinuxLoader, ParsesBzImageHeader) {
  TestBzImage k;
  ASSERT_TRUE(is_linux_kernel(k.bytes()));
  auto p = parse_linux_kernel(k.bytes());
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->format, KernelFormat::bzimage);
  EXPECT_EQ(p->protocol, 0x020F);
  EXPECT_EQ(p->setup_bytes, TestBzImage::kSetupBytes);
  EXPECT_EQ(p->header_end, 0x26Cu);
  EXPECT_EQ(p->load_gpa, TestBzImage::kPref);
  EXPECT_EQ(p->entry_gpa, TestBzImage::kPref + 0x200);
  EXPECT_EQ(p->footprint, TestBzImage::kInitSize);
  EXPECT_EQ(p->cmdline_max, 255u);
  EXPECT_EQ(p->initrd_max_end, 0x80000000u);
}

TEST(LinuxLoader, RelocatableKernelIsAlignedNonRelocatableStaysAtPrefAddress) {
  TestBzImage k;
  k.set<uint64_t>(0x258, 0x1100000);  // 17 MiB: not 2 MiB aligned
  EXPECT_EQ(parse_linux_kernel(k.bytes())->load_gpa, 0x1200000u);
  k.image[0x234] = std::byte{0};
  EXPECT_EQ(parse_linux_kernel(k.bytes())->load_gpa, 0x1100000u);
  k.set<uint64_t>(0x258, 0x8000);  // fixed and below 1 MiB
  EXPECT_NE(rejects(k).find("pref_address"), std::string::npos);
}

TEST(LinuxLoader, RejectsWhatIsNotABootableKernel) {
  EXPECT_FALSE(is_linux_kernel(testing::TestElf::with_code({0x90}).bytes()));
  TestBzImage k;
  std::memcpy(k.image.data() + 0x202, "HdrX", 4);
  EXPECT_FALSE(is_linux_kernel(k.bytes()));
  EXPECT_NE(rejects(k).find("no \"HdrS\""), std::string::npos);

  k = TestBzImage();
  k.set<uint16_t>(0x206, 0x020A);
  EXPECT_EQ(rejects(k),
            "setup header version 2.10: need boot protocol >= 2.12 (64-bit entry, xloadflags)");
  k = TestBzImage();
  k.set<uint16_t>(0x1FE, 0x1234);
  EXPECT_NE(rejects(k).find("boot_flag"), std::string::npos);
  k = TestBzImage();
  k.image[0x211] = std::byte{0};
  EXPECT_NE(rejects(k).find("loadflags: LOADED_HIGH"), std::string::npos);
  k = TestBzImage();
  k.set<uint16_t>(0x236, 0x7E);
  EXPECT_NE(rejects(k).find("xloadflags: XLF_KERNEL_64"), std::string::npos);
  k = TestBzImage();
  k.set<uint32_t>(0x230, 0x3000);
  EXPECT_NE(rejects(k).find("kernel_alignment 0x3000"), std::string::npos);
  k = TestBzImage();
  k.set<uint32_t>(0x238, 0);
  EXPECT_NE(rejects(k).find("cmdline_size"), std::string::npos);
  k = TestBzImage();
  k.image[0x201] = std::byte{0x10};  // header shorter than 2.12's
  EXPECT_NE(rejects(k).find("setup header length"), std::string::npos);
}

TEST(LinuxLoader, RejectsTruncatedImages) {
  TestBzImage k;
  k.image.resize(0x250);  // inside the setup header
  EXPECT_NE(rejects(k).find("truncated"), std::string::npos);
  k = TestBzImage();
  k.image.resize(k.image.size() - 16);  // one syssize paragraph short
  EXPECT_NE(rejects(k).find("truncated: setup_sects 3 and syssize"), std::string::npos);
  k = TestBzImage();
  k.image.resize(TestBzImage::kSetupBytes);  // no payload at all
  EXPECT_NE(rejects(k).find("truncated"), std::string::npos);
  k = TestBzImage();
  k.image[0x1F1] = std::byte{200};  // setup_sects past the end of the file
  EXPECT_NE(rejects(k).find("truncated"), std::string::npos);
}

TEST(LinuxLoader, PlanChecksCommandLineInitrdAndRam) {
  auto k = parse_linux_kernel(TestBzImage().bytes()).value();  // parses (above)
  const MemoryLayout l = layout_of(128 * kMiB);
  EXPECT_TRUE(plan_linux_boot(k, l, 0, std::string(255, 'x')).has_value());
  auto r = plan_linux_boot(k, l, 0, std::string(256, 'x'));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "boot-source.boot_args: 256 bytes: longer than the kernel accepts (setup header "
            "cmdline_size 255)");

  // The initramfs goes to the top of RAM, page aligned.
  auto p = plan_linux_boot(k, l, 5000, "").value();
  EXPECT_EQ(p.initrd_gpa, 128 * kMiB - 2 * kPage);
  EXPECT_EQ(p.initrd_size, 5000u);
  // ... and below initrd_addr_max.
  const MemoryLayout big = layout_of(3072 * kMiB);
  EXPECT_EQ(plan_linux_boot(k, big, kPage, "")->initrd_gpa, 0x80000000u - kPage);
  // Exactly what fits between the kernel's footprint and the end of RAM; one page more not.
  const uint64_t room = 128 * kMiB - (TestBzImage::kPref + TestBzImage::kInitSize);
  EXPECT_TRUE(plan_linux_boot(k, l, room, "").has_value());
  r = plan_linux_boot(k, l, room + 1, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field, "boot-source.initrd_path");
  EXPECT_FALSE(plan_linux_boot(k, l, UINT64_MAX, "").has_value());

  // A kernel whose init_size does not fit in RAM.
  TestBzImage huge;
  huge.set<uint32_t>(0x260, 0xF000000);  // 240 MiB from 16 MiB
  r = plan_linux_boot(parse_linux_kernel(huge.bytes()).value(), l, 0, "");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().field, "machine-config.mem_size_mib");
  EXPECT_NE(r.error().detail.find("init_size 240 MiB"), std::string::npos);
}

// Found by tests/fuzz/linux_fuzz (corpus/linux_fuzz/regression-initrd-below-kernel): a
// header whose initrd_addr_max lies below the kernel's end made "room above the kernel"
// wrap around (unsigned), and the initramfs went below the kernel — over the low BIOS
// area and the MP table, under 1 MiB.
TEST(LinuxLoader, PlanRejectsAnInitrdLimitBelowTheKernelsEnd) {
  const MemoryLayout l = layout_of(128 * kMiB);
  TestBzImage low_limit;
  // Kernel at 16 MiB + 4 MiB init_size; initramfs must end at or below 0x14C000.
  low_limit.set<uint32_t>(0x22C, 0x14BFFF);
  const auto k = parse_linux_kernel(low_limit.bytes()).value();  // a valid header
  for (const uint64_t size : {uint64_t{1}, uint64_t{kPage}, uint64_t{0xFF001}}) {
    SCOPED_TRACE(size);
    auto r = plan_linux_boot(k, l, size, "");
    ASSERT_FALSE(r.has_value()) << "initramfs placed at " << std::hex << r->initrd_gpa;
    EXPECT_EQ(r.error().field, "boot-source.initrd_path");
  }
  EXPECT_TRUE(plan_linux_boot(k, l, 0, "").has_value());  // no initramfs: nothing to place
}

TEST(LinuxLoader, E820MapReservesLowBiosAreaMmioGapAndPoolWindow) {
  auto e = linux_e820(layout_of(128 * kMiB));
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].addr, 0u);
  EXPECT_EQ(e[0].size, kLinuxEbdaGpa);
  EXPECT_EQ(e[0].type, kE820Ram);
  EXPECT_EQ(e[1].addr, kLinuxEbdaGpa);
  EXPECT_EQ(e[1].addr + e[1].size, 1 * kMiB);
  EXPECT_EQ(e[1].type, kE820Reserved);
  EXPECT_EQ(e[2].addr, 1 * kMiB);
  EXPECT_EQ(e[2].addr + e[2].size, 128 * kMiB);
  EXPECT_EQ(e[2].type, kE820Ram);
  EXPECT_EQ(e[3].addr, 3 * kGiB);
  EXPECT_EQ(e[3].size, 1 * kGiB);
  EXPECT_EQ(e[3].type, kE820Reserved);
  EXPECT_EQ(e[4].addr, 4 * kGiB);  // the pool window
  EXPECT_EQ(e[4].size, 1 * kGiB);
  EXPECT_EQ(e[4].type, kE820Reserved);

  e = linux_e820(layout_of(4 * kGiB, 0));  // RAM on both sides of the gap, no pool
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[2].addr + e[2].size, 3 * kGiB);
  EXPECT_EQ(e[4].addr, 4 * kGiB);
  EXPECT_EQ(e[4].size, 1 * kGiB);
  EXPECT_EQ(e[4].type, kE820Ram);
}

class LinuxLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_ = layout_of(128 * kMiB);
    memory_ = GuestMemory::create(layout_.ram).value();  // 128 MiB of lazy memory
  }
  MemoryLayout layout_;
  std::unique_ptr<GuestMemory> memory_;
};

TEST_F(LinuxLoad, WritesKernelInitrdCmdlineBootParamsAndPageTables) {
  TestBzImage img;
  auto k = parse_linux_kernel(img.bytes()).value();
  std::vector<std::byte> initrd(10000, std::byte{0x5A});
  const std::string cmdline = "console=ttyS0 reboot=k";
  auto plan = plan_linux_boot(k, layout_, initrd.size(), cmdline).value();
  ASSERT_TRUE(load_linux(img.bytes(), k, plan, initrd, cmdline, *memory_, layout_).has_value());

  auto payload = memory_->translate(k.load_gpa, TestBzImage::kPayloadBytes).value();
  EXPECT_EQ(
      std::memcmp(payload.data(), img.image.data() + TestBzImage::kSetupBytes, payload.size()), 0);
  auto rd = memory_->translate(plan.initrd_gpa, initrd.size()).value();
  EXPECT_EQ(std::memcmp(rd.data(), initrd.data(), initrd.size()), 0);
  auto line = memory_->translate(kLinuxCmdlineGpa, cmdline.size() + 1).value();
  EXPECT_EQ(std::memcmp(line.data(), cmdline.c_str(), cmdline.size() + 1), 0);

  auto zp = memory_->translate(kLinuxBootParamsGpa, 4096).value();
  EXPECT_EQ(std::memcmp(zp.data() + 0x202, "HdrS", 4), 0);
  EXPECT_EQ(get<uint16_t>(zp, 0x206), 0x020F);             // the kernel's header, copied
  EXPECT_EQ(get<uint8_t>(zp, 0x210), 0xFF);                // type_of_loader
  EXPECT_EQ(get<uint8_t>(zp, 0x211) & 1, 1);               // LOADED_HIGH
  EXPECT_EQ(get<uint32_t>(zp, 0x218), plan.initrd_gpa);    // ramdisk_image
  EXPECT_EQ(get<uint32_t>(zp, 0x21C), initrd.size());      // ramdisk_size
  EXPECT_EQ(get<uint32_t>(zp, 0x228), kLinuxCmdlineGpa);   // cmd_line_ptr
  EXPECT_EQ(get<uint64_t>(zp, 0x070), kAcpiTablesGpa);     // acpi_rsdp_addr (acpi.h)
  EXPECT_EQ(get<uint32_t>(zp, 0x0C8), 0u);                 // ext_cmd_line_ptr
  EXPECT_EQ(get<uint8_t>(zp, 0x1EF), 0);                   // sentinel stays 0
  ASSERT_EQ(get<uint8_t>(zp, 0x1E8), 5);                   // e820_entries
  EXPECT_EQ(get<uint64_t>(zp, 0x2D0 + 2 * 20), 1 * kMiB);  // third entry: RAM from 1 MiB
  EXPECT_EQ(get<uint64_t>(zp, 0x2D0 + 2 * 20 + 8), 127 * kMiB);
  EXPECT_EQ(get<uint32_t>(zp, 0x2D0 + 2 * 20 + 16), kE820Ram);

  // GDT: __BOOT_CS is 64-bit code, __BOOT_DS data.
  auto gdt = memory_->read_obj<std::array<uint64_t, 6>>(kLinuxGdtGpa).value();
  EXPECT_EQ(gdt[kLinuxBootCs / 8], gdt_entry(0xA09B, 0, 0xFFFFF));
  EXPECT_EQ(gdt[kLinuxBootDs / 8], gdt_entry(0xC093, 0, 0xFFFFF));
  // The identity map covers the kernel's entry (PML4[0] -> PDPT[0] -> PD[8] = 16 MiB).
  const auto pd0 =
      memory_->read_obj<std::array<uint64_t, 512>>(LABYRINTH_PAGE_TABLE_GPA + 2 * kPage);
  EXPECT_EQ(pd0.value()[8] & ~0xFFFull, 16 * kMiB);
}

TEST_F(LinuxLoad, BootParamsCarryNoMoreThanTheSetupHeader) {
  TestBzImage img;
  img.image[0x201] = std::byte{0xF0};  // a header claiming to run to 0x2F2 (into e820_table)
  for (uint64_t i = 0x26C; i < 0x2F2; ++i) img.image[i] = std::byte{0xEE};
  auto k = parse_linux_kernel(img.bytes()).value();
  auto plan = plan_linux_boot(k, layout_, 0, "").value();
  auto zp = make_boot_params(img.bytes(), k, plan, layout_);
  EXPECT_EQ(get<uint8_t>(zp, 0x28F), 0xEE);
  EXPECT_EQ(get<uint8_t>(zp, 0x290), 0x00);
  EXPECT_EQ(get<uint64_t>(zp, 0x2D0), 0u);  // e820[0].addr
}

TEST_F(LinuxLoad, LoadsAnElfVmlinux) {
  testing::TestElf e = testing::TestElf::with_code({0x90, 0xF4});
  e.ph[0].p_vaddr = 0xFFFFFFFF81000000ull;
  e.ph[0].p_paddr = 16 * kMiB;
  e.eh.e_entry = 16 * kMiB + testing::TestElf::kCodeOffset;
  ASSERT_TRUE(is_linux_kernel(e.bytes()));
  auto k = parse_linux_kernel(e.bytes());
  ASSERT_TRUE(k.has_value()) << k.error().message();
  EXPECT_EQ(k->format, KernelFormat::vmlinux);
  EXPECT_EQ(k->load_gpa, 16 * kMiB);
  EXPECT_EQ(k->entry_gpa, 16 * kMiB + testing::TestElf::kCodeOffset);
  auto plan = plan_linux_boot(*k, layout_, 0, "console=ttyS0").value();
  ASSERT_TRUE(load_linux(e.bytes(), *k, plan, {}, "console=ttyS0", *memory_, layout_));
  auto code = memory_->translate(k->entry_gpa, 2).value();
  EXPECT_EQ(code[0], std::byte{0x90});
  auto zp = memory_->translate(kLinuxBootParamsGpa, 4096).value();
  EXPECT_EQ(std::memcmp(zp.data() + 0x202, "HdrS", 4), 0);
  EXPECT_EQ(get<uint16_t>(zp, 0x1FE), 0xAA55);

  e.ph[0].p_paddr = 0x8000;  // a vmlinux placed below 1 MiB
  e.eh.e_entry = 0x8000 + testing::TestElf::kCodeOffset;
  EXPECT_NE(parse_linux_kernel(e.bytes()).error().detail.find("below 1 MiB"), std::string::npos);
}

// Debian's vmlinux (unpacked by guest/linux/fetch_kernel.sh --vmlinux) has its per-CPU
// segment linked at virtual address 0: it is still a Linux kernel, loaded at p_paddr.
// Before this was allowed such a file was taken for a Labyrinth test guest.
TEST_F(LinuxLoad, AVmlinuxWithItsPerCpuSegmentLinkedAtZeroIsLinux) {
  testing::TestElf e = testing::TestElf::with_code({0x90, 0xF4});
  const uint64_t code_at = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr);
  e.eh.e_phnum = 2;
  e.ph[0].p_vaddr = 0xFFFFFFFF81000000ull;
  e.ph[0].p_paddr = 16 * kMiB;
  e.ph[0].p_filesz = code_at + e.code.size();
  e.ph[0].p_memsz = e.ph[0].p_filesz;
  Elf64_Phdr percpu = e.ph[0];
  percpu.p_vaddr = 0;  // .data..percpu
  percpu.p_paddr = 20 * kMiB;
  percpu.p_offset = 0;
  percpu.p_filesz = 0;
  percpu.p_memsz = 0x35000;
  e.ph.push_back(percpu);
  e.eh.e_entry = 16 * kMiB + code_at;
  auto kind = kernel_kind(e.bytes(), "vmlinux");
  ASSERT_TRUE(kind.has_value());
  EXPECT_EQ(*kind, KernelKind::linux);
  auto k = parse_linux_kernel(e.bytes());
  ASSERT_TRUE(k.has_value()) << k.error().message();
  EXPECT_EQ(k->format, KernelFormat::vmlinux);
  EXPECT_EQ(k->load_gpa, 16 * kMiB);
  EXPECT_EQ(k->footprint, 4 * kMiB + 0x35000);
  auto plan = plan_linux_boot(*k, layout_, 0, "console=ttyS0").value();
  ASSERT_TRUE(load_linux(e.bytes(), *k, plan, {}, "console=ttyS0", *memory_, layout_));
  EXPECT_EQ(memory_->translate(k->entry_gpa, 2).value()[1], std::byte{0xF4});

  // The entry in the low-linked segment: a test guest's layout, not a vmlinux.
  e.eh.e_entry = 20 * kMiB;
  EXPECT_FALSE(is_linux_kernel(e.bytes()));
}

TEST(LinuxLoader, EntryStateFollowsThe64BitBootProtocol) {
  kvm_sregs s = linux_sregs(kvm_sregs{});
  EXPECT_EQ(s.cs.selector, 0x10);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.ds.selector, 0x18);
  EXPECT_EQ(s.ss.selector, 0x18);
  EXPECT_EQ(s.cr3, LABYRINTH_PAGE_TABLE_GPA);
  EXPECT_NE(s.cr0 & kCr0Pg, 0u);
  EXPECT_NE(s.cr4 & kCr4Pae, 0u);
  EXPECT_EQ(s.efer & (kEferLme | kEferLma), kEferLme | kEferLma);
  kvm_regs r = linux_regs(0x1000200);
  EXPECT_EQ(r.rip, 0x1000200u);
  EXPECT_EQ(r.rsi, kLinuxBootParamsGpa);
  EXPECT_EQ(r.rflags, 0x2u);  // interrupts off
}

}  // namespace
}  // namespace labyrinth::vmm
