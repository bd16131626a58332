#include "vmm/boot/multiboot_loader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/vmm/test_bzimage.h"
#include "tests/vmm/test_elf.h"
#include "tests/vmm/test_multiboot.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/byte_fields.h"

namespace labyrinth::vmm {
namespace {

using testing::TestMultiboot;

TestMultiboot kernel() {
  return TestMultiboot::with_code(testing::guests::kMbReport);
}

// The detail of a rejected kernel (and that the error names the kernel file).
std::string rejects(const std::vector<std::byte>& bytes) {
  auto r = parse_multiboot_kernel(bytes);
  EXPECT_FALSE(r.has_value());
  if (r) return "";
  EXPECT_EQ(r.error().field, "boot-source.kernel_image_path");
  return r.error().detail;
}
std::string rejects(const TestMultiboot& k) {
  return rejects(k.bytes());
}
#define EXPECT_MENTIONS(text, what) EXPECT_NE((text).find(what), std::string::npos) << (text)

TEST(MultibootLoader, ParsesCraftedKernel) {
  const auto k = kernel();
  ASSERT_TRUE(is_multiboot_kernel(k.bytes()));
  auto p = parse_multiboot_kernel(k.bytes());
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->header_offset, TestMultiboot::kHeaderOffset);
  EXPECT_EQ(p->flags, 0x3u);
  EXPECT_EQ(p->entry, TestMultiboot::kLoad + TestMultiboot::kCodeOffset);
  EXPECT_EQ(p->load_low, TestMultiboot::kLoad);
  EXPECT_EQ(p->load_end, TestMultiboot::kLoad + k.bytes().size() + TestMultiboot::kBss);
  ASSERT_EQ(p->segments.size(), 1u);
}

TEST(MultibootLoader, EntryIsTranslatedFromVirtualToPhysical) {
  auto k = kernel();
  k.ph[0].p_vaddr = 0xC0400000;  // linked high, loaded at 4 MiB
  k.eh.e_entry = 0xC0400000 + TestMultiboot::kCodeOffset;
  auto p = parse_multiboot_kernel(k.bytes());
  ASSERT_TRUE(p.has_value()) << p.error().message();
  EXPECT_EQ(p->entry, TestMultiboot::kLoad + TestMultiboot::kCodeOffset);
}

TEST(MultibootLoader, HeaderMustBeAlignedInsideTheFirst8KiB) {
  // Other kinds of kernel are not Multiboot ones.
  EXPECT_FALSE(is_multiboot_kernel(testing::TestElf::with_code({0x90}).bytes()));
  EXPECT_FALSE(is_multiboot_kernel(testing::TestBzImage().bytes()));
  EXPECT_FALSE(is_multiboot_kernel({}));
  const uint32_t magic = kMultibootMagic;
  auto place = [&](size_t size, size_t off) {
    std::vector<std::byte> b(size, std::byte{0});
    std::memcpy(b.data() + off, &magic, 4);
    return b;
  };
  EXPECT_TRUE(is_multiboot_kernel(place(8192, 8180)));   // 12 bytes end at 8192
  EXPECT_FALSE(is_multiboot_kernel(place(8192, 8184)));  // would end past 8 KiB
  EXPECT_FALSE(is_multiboot_kernel(place(16384, 8192)));
  EXPECT_FALSE(is_multiboot_kernel(place(4096, 2)));  // not 4-byte aligned
  EXPECT_FALSE(is_multiboot_kernel(place(100, 92)));  // header cut by the file's end
  EXPECT_MENTIONS(rejects(place(100, 92)), "no header magic 0x1badb002");
}

TEST(MultibootLoader, RejectsMalformedHeaderNamingTheField) {
  auto k = kernel();
  k.checksum += 1;
  EXPECT_TRUE(is_multiboot_kernel(k.bytes()));  // claims to be one: the error says why not
  EXPECT_MENTIONS(rejects(k), "multiboot header checksum");
  k = kernel();
  k.flags |= kMbVideoMode;
  k.fix_checksum();
  EXPECT_MENTIONS(rejects(k), "flags 0x7: required feature bit(s) 0x4 not supported (bit 2");
  k = kernel();
  k.flags |= 1u << 9;
  k.fix_checksum();
  EXPECT_MENTIONS(rejects(k), "bit(s) 0x200 not supported");
  k = kernel();
  k.flags |= 1u << 20;  // optional bits above 16 are fine
  k.fix_checksum();
  EXPECT_TRUE(parse_multiboot_kernel(k.bytes()).has_value());
}

TEST(MultibootLoader, RejectsWhatIsNotAnElf32Kernel) {
  auto k = kernel();
  auto b = k.bytes();
  b[0] = std::byte{'X'};
  EXPECT_MENTIONS(rejects(b), "not an ELF file");
  k.flags |= kMbAoutKludge;
  k.fix_checksum();
  b = k.bytes();
  b[0] = std::byte{'X'};
  EXPECT_MENTIONS(rejects(b), "bit 16 (a.out kludge");
  k = kernel();
  k.eh.e_ident[EI_CLASS] = ELFCLASS64;
  EXPECT_MENTIONS(rejects(k), "ELF class ELF64: a multiboot kernel must be ELF32");
  k = kernel();
  k.eh.e_ident[EI_DATA] = ELFDATA2MSB;
  EXPECT_MENTIONS(rejects(k), "not little endian");
  k = kernel();
  k.eh.e_version = 2;
  EXPECT_MENTIONS(rejects(k), "ELF e_version 2");
  k = kernel();
  k.eh.e_type = ET_DYN;
  EXPECT_MENTIONS(rejects(k), "ELF e_type 3");
  k = kernel();
  k.eh.e_machine = EM_X86_64;
  EXPECT_MENTIONS(rejects(k), "ELF e_machine 62: not i386");
  k = kernel();
  k.eh.e_phentsize = 56;
  EXPECT_MENTIONS(rejects(k), "ELF e_phentsize 56");
  k = kernel();
  k.eh.e_phnum = 0;
  EXPECT_MENTIONS(rejects(k), "ELF e_phnum 0");
  k.eh.e_phnum = 65;
  EXPECT_MENTIONS(rejects(k), "ELF e_phnum 65");
  k = kernel();
  k.eh.e_phoff = 0xFFFFFFF0;
  EXPECT_MENTIONS(rejects(k), "ELF e_phoff 0xfffffff0");
}

TEST(MultibootLoader, RejectsBadSegmentsNamingTheProgramHeader) {
  auto k = kernel();
  k.ph[0].p_filesz = k.ph[0].p_memsz + 1;
  EXPECT_MENTIONS(rejects(k), "ELF program header 0: p_filesz");
  k = kernel();
  k.ph[0].p_offset = 0xFFFFFF00;
  EXPECT_MENTIONS(rejects(k), "ELF program header 0: p_offset 0xffffff00");
  k = kernel();
  k.ph[0].p_filesz = 0x100000;
  k.ph[0].p_memsz = 0x100000;
  EXPECT_MENTIONS(rejects(k), "ends past the file");
  k = kernel();
  k.ph[0].p_paddr = 0xFFFFF000;
  EXPECT_MENTIONS(rejects(k), "ends past 4 GiB");
  k = kernel();
  k.ph[0].p_memsz = 0xFFFFFFFF;
  EXPECT_MENTIONS(rejects(k), "ends past 4 GiB");
  // A second segment overlapping the first (the Multiboot header and code move by 32 bytes).
  k = kernel();
  k.ph.push_back(k.ph[0]);
  k.eh.e_phnum = 2;
  k.ph[0].p_filesz += sizeof(Elf32_Phdr);
  k.ph[1].p_filesz = 0;
  k.ph[1].p_paddr += 0x1000;
  EXPECT_MENTIONS(rejects(k), "ELF program header 1: p_paddr 0x401000");
  k = kernel();
  k.ph[0].p_type = PT_NOTE;
  EXPECT_MENTIONS(rejects(k), "no PT_LOAD segment");
  k = kernel();
  k.eh.e_entry = TestMultiboot::kLoad - 1;
  EXPECT_MENTIONS(rejects(k), "ELF e_entry 0x3fffff is outside every PT_LOAD segment");
}

// A guest-RAM fixture: 64 MiB.
class MultibootBoot : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_ = MemoryLayout::compute(64 * kMiB, 0).value();  // valid sizes
    memory_ = GuestMemory::create(layout_.ram).value();
  }
  MultibootKernel parsed(const TestMultiboot& k) {
    return parse_multiboot_kernel(k.bytes()).value();  // a valid crafted kernel
  }
  MemoryLayout layout_;
  std::unique_ptr<GuestMemory> memory_;
};

TEST_F(MultibootBoot, PlanChecksTheKernelAgainstRam) {
  auto k = kernel();
  k.ph[0].p_paddr = 0;  // page 0: the AP trampoline's
  auto plan = plan_multiboot_boot(parsed(k), layout_, 0, "k", "");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().field, "boot-source.kernel_image_path");
  EXPECT_MENTIONS(plan.error().detail, "p_paddr 0x0 + p_memsz");
  EXPECT_MENTIONS(plan.error().detail, "is below 1 MiB but not inside [0x1000, 0x9fc00)");
  k = kernel();
  k.ph[0].p_paddr = 0x9F000;  // runs into the EBDA and the BIOS area (MP table, ACPI)
  plan = plan_multiboot_boot(parsed(k), layout_, 0, "k", "");
  ASSERT_FALSE(plan.has_value());
  EXPECT_MENTIONS(plan.error().detail, "p_paddr 0x9f000");
  k = kernel();
  k.ph[0].p_paddr = 0x80000;  // low, clear of the boot information: it stays at 0x8000
  plan = plan_multiboot_boot(parsed(k), layout_, 0, "k", "");
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_EQ(plan->block, kMbGdtGpa);

  k = kernel();
  k.ph[0].p_paddr = 0xBFFFF000;  // crosses into the MMIO gap
  plan = plan_multiboot_boot(parsed(k), layout_, 0, "k", "");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().field, "boot-source.kernel_image_path");
  EXPECT_MENTIONS(plan.error().detail, "reaches into the MMIO gap");

  k = kernel();
  k.ph[0].p_paddr = 63 * kMiB;  // .bss runs past the end of 64 MiB
  k.ph[0].p_memsz = kMiB + 1;
  plan = plan_multiboot_boot(parsed(k), layout_, 0, "k", "");
  ASSERT_FALSE(plan.has_value());
  EXPECT_EQ(plan.error().field, "machine-config.mem_size_mib");
  EXPECT_MENTIONS(plan.error().detail, "needs RAM up to 0x4000001");
}

TEST_F(MultibootBoot, PlanPlacesTheModuleAboveTheKernel) {
  const auto k = parsed(kernel());
  auto plan = plan_multiboot_boot(k, layout_, 5000, "k a=1", "env");
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_EQ(plan->module_gpa, align_up(k.load_end, kPage));
  EXPECT_EQ(plan->module_size, 5000u);
  // No module without a name; a module too large for RAM names initrd_path.
  EXPECT_EQ(plan_multiboot_boot(k, layout_, 0, "k", "")->module_gpa, 0u);
  auto big = plan_multiboot_boot(k, layout_, 64 * kMiB, "k", "env");
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().field, "boot-source.initrd_path");
  // The strings area: command line and module name with their NULs.
  const std::string line(kMbStringsEnd - kMbCmdlineGpa - 2 - 3, 'c');
  EXPECT_TRUE(plan_multiboot_boot(k, layout_, 1, line, "env").has_value());
  auto longer = plan_multiboot_boot(k, layout_, 1, line + "c", "env");
  ASSERT_FALSE(longer.has_value());
  EXPECT_EQ(longer.error().field, "boot-source.boot_args");
}

TEST_F(MultibootBoot, LoadWritesKernelModuleAndBootInformation) {
  const auto tk = kernel();
  const auto image = tk.bytes();
  const auto k = parsed(tk);
  // Garbage where .bss and the module's terminator go: the loader must clear them.
  auto junk = memory_->translate(TestMultiboot::kLoad, 2 * kMiB).value();
  std::memset(junk.data(), 0xAB, junk.size());
  const std::string cmdline = multiboot_cmdline("/tmp/x86/tsc.flat", "-smp 1");
  EXPECT_EQ(cmdline, "/tmp/x86/tsc.flat -smp 1");
  EXPECT_EQ(multiboot_cmdline("/k", ""), "/k");
  const std::vector<std::byte> module(100, std::byte{'e'});
  const auto plan = plan_multiboot_boot(k, layout_, module.size(), cmdline, "/tmp/env").value();
  ASSERT_TRUE(load_multiboot(image, k, plan, module, cmdline, "/tmp/env", *memory_, layout_));

  // Segment bytes, then zeroed .bss.
  auto seg = memory_->translate(TestMultiboot::kLoad, k.load_end - k.load_low).value();
  EXPECT_EQ(std::memcmp(seg.data(), image.data(), image.size()), 0);
  for (size_t i = image.size(); i < seg.size(); ++i) ASSERT_EQ(seg[i], std::byte{0}) << i;
  // The module and the zero byte after it.
  auto mod = memory_->translate(plan.module_gpa, module.size() + 1).value();
  EXPECT_EQ(std::memcmp(mod.data(), module.data(), module.size()), 0);
  EXPECT_EQ(mod[module.size()], std::byte{0});

  auto mbi = memory_->translate(kMbInfoGpa, 116).value();
  EXPECT_EQ(get<uint32_t>(mbi, 0), kMbiMem | kMbiCmdline | kMbiMods | kMbiMmap | kMbiLoaderName);
  EXPECT_EQ(get<uint32_t>(mbi, 4), 639u);              // mem_lower, KiB
  EXPECT_EQ(get<uint32_t>(mbi, 8), (64 - 1) * 1024u);  // mem_upper: 1 MiB .. 64 MiB
  EXPECT_EQ(get<uint32_t>(mbi, 16), kMbCmdlineGpa);
  auto line = memory_->translate(kMbCmdlineGpa, cmdline.size() + 1).value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(line.data())), cmdline);
  EXPECT_EQ(get<uint32_t>(mbi, 20), 1u);  // mods_count
  EXPECT_EQ(get<uint32_t>(mbi, 24), kMbModsGpa);
  auto mods = memory_->translate(kMbModsGpa, 16).value();
  EXPECT_EQ(get<uint32_t>(mods, 0), plan.module_gpa);
  EXPECT_EQ(get<uint32_t>(mods, 4), plan.module_gpa + module.size());
  auto name = memory_->translate(get<uint32_t>(mods, 8), 9).value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(name.data())), "/tmp/env");
  // The memory map: the e820 map, entries of size 20 (plus the size field).
  const auto e820 = linux_e820(layout_);
  EXPECT_EQ(get<uint32_t>(mbi, 44), e820.size() * 24);
  EXPECT_EQ(get<uint32_t>(mbi, 48), kMbMmapGpa);
  auto mmap = memory_->translate(kMbMmapGpa, e820.size() * 24).value();
  for (size_t i = 0; i < e820.size(); ++i) {
    EXPECT_EQ(get<uint32_t>(mmap, i * 24), 20u);
    EXPECT_EQ(get<uint64_t>(mmap, i * 24 + 4), e820[i].addr);
    EXPECT_EQ(get<uint64_t>(mmap, i * 24 + 12), e820[i].size);
    EXPECT_EQ(get<uint32_t>(mmap, i * 24 + 20), e820[i].type);
  }
  EXPECT_EQ(get<uint64_t>(mmap, 2 * 24 + 4), LABYRINTH_GUEST_LOAD_MIN);  // RAM from 1 MiB
  auto loader = memory_->translate(get<uint32_t>(mbi, 64), 10).value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(loader.data())), "labyrinth");
  // The GDT the entry state points at: flat 32-bit code and data.
  auto gdt = memory_->translate(kMbGdtGpa, 24).value();
  EXPECT_EQ(get<uint64_t>(gdt, 8), 0x00CF9B000000FFFFull);
  EXPECT_EQ(get<uint64_t>(gdt, 16), 0x00CF93000000FFFFull);
}

// kvm-unit-tests' realmode.flat is linked at 0x8000, where the boot information block
// usually is; QEMU runs it with its Multiboot information above the kernel. The block
// moves there, the module above it, and the entry state points at the moved block.
// Before, the kernel was refused ("below 1 MiB").
TEST_F(MultibootBoot, AKernelWhereTheBootInformationGoesGetsItAboveItself) {
  auto tk = kernel();
  tk.ph[0].p_paddr = 0x8000;
  tk.eh.e_entry = 0x8000 + TestMultiboot::kCodeOffset;
  tk.ph[0].p_vaddr = 0x8000;
  const auto image = tk.bytes();
  const auto k = parsed(tk);
  const std::string cmdline = "x86/realmode.flat";
  const std::vector<std::byte> module(100, std::byte{'e'});
  auto plan = plan_multiboot_boot(k, layout_, module.size(), cmdline, "/tmp/env");
  ASSERT_TRUE(plan.has_value()) << plan.error().message();
  EXPECT_EQ(plan->block, align_up(k.load_end, kPage));
  EXPECT_GE(plan->module_gpa, plan->block + kMbBlockBytes);
  ASSERT_TRUE(load_multiboot(image, k, *plan, module, cmdline, "/tmp/env", *memory_, layout_));
  auto seg = memory_->translate(0x8000, image.size()).value();
  EXPECT_EQ(std::memcmp(seg.data(), image.data(), image.size()), 0) << "the kernel is intact";
  auto mbi = memory_->translate(plan->at(kMbInfoGpa), 116).value();
  EXPECT_EQ(get<uint32_t>(mbi, 16), plan->at(kMbCmdlineGpa));
  auto line = memory_->translate(get<uint32_t>(mbi, 16), cmdline.size() + 1).value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(line.data())), cmdline);
  auto mods = memory_->translate(get<uint32_t>(mbi, 24), 16).value();
  EXPECT_EQ(get<uint32_t>(mods, 0), plan->module_gpa);
  auto gdt = memory_->translate(plan->at(kMbGdtGpa), 24).value();
  EXPECT_EQ(get<uint64_t>(gdt, 8), 0x00CF9B000000FFFFull);
  EXPECT_EQ(multiboot_sregs(kvm_sregs{}, *plan).gdt.base, plan->block);
  EXPECT_EQ(multiboot_regs(k.entry, *plan).rbx, plan->at(kMbInfoGpa));
  EXPECT_EQ(multiboot_regs(k.entry, *plan).rip, 0x8000 + TestMultiboot::kCodeOffset);
}

// A kernel below the block (0x1000 up) keeps the block at 0x8000; the module goes above
// the kernel but clear of the block, not into it (CI's multiboot_fuzz found "module at
// 0x7000" here), and a module too big for the rest of low RAM goes to 1 MiB, not across
// the EBDA.
TEST_F(MultibootBoot, AModuleAboveALowKernelStaysClearOfTheBlockAndTheEbda) {
  auto tk = kernel();
  tk.ph[0].p_paddr = 0x1000;
  tk.ph[0].p_vaddr = 0x1000;
  tk.ph[0].p_memsz = 0x6000;  // up to 0x7000, one page below the block
  tk.eh.e_entry = 0x1000 + TestMultiboot::kCodeOffset;
  const auto k = parsed(tk);
  ASSERT_EQ(k.load_end, 0x7000u);
  for (const uint64_t size : {uint64_t{100}, uint64_t{0x1000}, uint64_t{0x90000}}) {
    auto plan = plan_multiboot_boot(k, layout_, size, "k", "env");
    ASSERT_TRUE(plan.has_value()) << plan.error().message();
    EXPECT_EQ(plan->block, kMbGdtGpa);
    EXPECT_TRUE(plan->module_gpa >= kMbGdtGpa + kMbBlockBytes ||
                plan->module_gpa + size < kMbGdtGpa)
        << std::hex << "module at 0x" << plan->module_gpa << " + 0x" << size;
    EXPECT_TRUE(plan->module_gpa + size + 1 <= kLinuxEbdaGpa ||
                plan->module_gpa >= LABYRINTH_GUEST_LOAD_MIN)
        << std::hex << "module at 0x" << plan->module_gpa << " + 0x" << size;
    const std::vector<std::byte> module(size, std::byte{'m'});
    ASSERT_TRUE(load_multiboot(tk.bytes(), k, *plan, module, "k", "env", *memory_, layout_));
    auto gdt = memory_->translate(kMbGdtGpa, 24).value();
    EXPECT_EQ(get<uint64_t>(gdt, 8), 0x00CF9B000000FFFFull) << "the module left the GDT alone";
  }
  EXPECT_EQ(plan_multiboot_boot(k, layout_, 100, "k", "env")->module_gpa, 0x7000u) << "it fits";
  EXPECT_EQ(plan_multiboot_boot(k, layout_, 0x1000, "k", "env")->module_gpa,
            kMbGdtGpa + kMbBlockBytes);
  EXPECT_EQ(plan_multiboot_boot(k, layout_, 0x90000, "k", "env")->module_gpa,
            LABYRINTH_GUEST_LOAD_MIN);
}

// A kernel that ends just below the EBDA and covers the block's place: the block goes to
// 1 MiB, and a module that does not fit below the EBDA goes above the block.
TEST_F(MultibootBoot, TheBlockAndModuleAboveAKernelEndingAtTheEbdaGoFromOneMiB) {
  auto tk = kernel();
  tk.ph[0].p_paddr = 0x8000;
  tk.ph[0].p_vaddr = 0x8000;
  tk.ph[0].p_memsz = 0x9E000 - 0x8000;
  tk.eh.e_entry = 0x8000 + TestMultiboot::kCodeOffset;
  const auto k = parsed(tk);
  for (const uint64_t size : {uint64_t{0x800}, uint64_t{0x1000}, uint64_t{0x60000}}) {
    auto plan = plan_multiboot_boot(k, layout_, size, "k", "env");
    ASSERT_TRUE(plan.has_value()) << plan.error().message();
    EXPECT_EQ(plan->block, LABYRINTH_GUEST_LOAD_MIN);
    EXPECT_TRUE(plan->module_gpa >= plan->block + kMbBlockBytes ||
                plan->module_gpa + size < plan->block)
        << std::hex << "module at 0x" << plan->module_gpa << " + 0x" << size;
    EXPECT_TRUE(plan->module_gpa + size + 1 <= kLinuxEbdaGpa ||
                plan->module_gpa >= LABYRINTH_GUEST_LOAD_MIN);
  }
}

TEST_F(MultibootBoot, LoadRefusesAPlanForOtherInputs) {
  const auto tk = kernel();
  const auto k = parsed(tk);
  const auto plan = plan_multiboot_boot(k, layout_, 10, "k", "env").value();
  const std::vector<std::byte> other(11);
  EXPECT_EQ(load_multiboot(tk.bytes(), k, plan, other, "k", "env", *memory_, layout_).error(),
            Error::boot_layout);
  EXPECT_EQ(
      load_multiboot(tk.bytes(), k, plan, std::span(other).first(10), "k", "", *memory_, layout_)
          .error(),
      Error::boot_layout);
}

TEST(MultibootLoader, EntryStateIsFlat32BitProtectedMode) {
  kvm_sregs base{};
  base.efer = kEferLme | kEferLma;  // whatever was there is replaced
  base.cr4 = kCr4Pae;
  base.tr.type = 0xB;
  base.tr.present = 1;
  const kvm_sregs s = multiboot_sregs(base);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et);
  EXPECT_EQ(s.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(s.cr4, 0u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.cs.selector, kMbCodeSelector);
  EXPECT_EQ(s.cs.type, 0xB);
  EXPECT_EQ(s.cs.db, 1);
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.limit, 0xFFFFFFFFu);
  EXPECT_EQ(s.cs.base, 0u);
  for (const kvm_segment* d : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(d->selector, kMbDataSelector);
    EXPECT_EQ(d->type, 0x3);
    EXPECT_EQ(d->db, 1);
    EXPECT_EQ(d->limit, 0xFFFFFFFFu);
  }
  EXPECT_EQ(s.gdt.base, kMbGdtGpa);
  EXPECT_EQ(s.gdt.limit, 23);
  EXPECT_EQ(s.tr.type, 0xB);  // KVM's reset TR is kept
  const kvm_regs r = multiboot_regs(0x4000BC);
  EXPECT_EQ(r.rip, 0x4000BCu);
  EXPECT_EQ(r.rax, 0x2BADB002u);
  EXPECT_EQ(r.rbx, kMbInfoGpa);
  EXPECT_EQ(r.rflags, 2u);
}

}  // namespace
}  // namespace labyrinth::vmm
