#include "vmm/boot/boot_setup.h"

#include <gtest/gtest.h>

#include "vmm/boot/cpuid.h"

namespace labyrinth::vmm {
namespace {

class BootSetup : public ::testing::Test {
 protected:
  void SetUp() override {
    layout_ = MemoryLayout::compute(4 * kGiB, 32 * kMiB).value();  // valid sizes
    memory_ = GuestMemory::create(layout_.ram).value();            // lazy 4 GiB
    ASSERT_TRUE(write_boot_structures(*memory_, layout_, {2, 2'500'000, "console=ttyS0"}));
  }
  uint64_t qword(uint64_t gpa) const { return memory_->read_obj<uint64_t>(gpa).value(); }
  // Walks the identity map like the MMU for a 2 MiB page; returns the PD entry.
  uint64_t pde_for(uint64_t addr) const {
    const uint64_t pml4e = qword(LABYRINTH_PAGE_TABLE_GPA + ((addr >> 39) & 511) * 8);
    EXPECT_TRUE(pml4e & 1);
    const uint64_t pdpte = qword((pml4e & ~0xFFFull) + ((addr >> 30) & 511) * 8);
    EXPECT_TRUE(pdpte & 1);
    EXPECT_FALSE(pdpte & 0x80) << "no 1 GiB pages (they triple-fault under PVM)";
    return qword((pdpte & ~0xFFFull) + ((addr >> 21) & 511) * 8);
  }
  MemoryLayout layout_;
  std::unique_ptr<GuestMemory> memory_;
};

TEST_F(BootSetup, IdentityMapCoversRamGapAndPool) {
  for (uint64_t addr : std::initializer_list<uint64_t>{0, 0x200000, 3 * kGiB - kHugePage, 4 * kGiB,
                                                       5 * kGiB - kHugePage, layout_.pool.gpa,
                                                       layout_.identity_map_end - kHugePage}) {
    const uint64_t pde = pde_for(addr);
    EXPECT_EQ(pde & ~0x1FFFFFull, addr) << std::hex << addr;
    EXPECT_EQ(pde & 0x87, 0x87u) << "present, writable, user, 2 MiB";
    EXPECT_EQ(pde & 0x18, 0u) << "RAM and pool are cacheable";
  }
  for (uint64_t addr :
       std::initializer_list<uint64_t>{0xC0000000, 0xFEC00000, 0xFEE00000, 0xFFE00000}) {
    EXPECT_EQ(pde_for(addr) & 0x18, 0x18u) << "MMIO gap is PCD|PWT at " << std::hex << addr;
  }
  // Page tables stay below the guest image.
  const uint64_t pds = layout_.identity_map_end / kGiB;
  EXPECT_LE(LABYRINTH_PAGE_TABLE_GPA + (2 + pds) * kPage, LABYRINTH_GUEST_LOAD_MIN);
}

TEST_F(BootSetup, BootInfoDescribesTheMachine) {
  auto info = memory_->read_obj<labyrinth_boot_info>(LABYRINTH_BOOT_INFO_GPA).value();
  EXPECT_EQ(info.magic, LABYRINTH_BOOT_INFO_MAGIC);
  EXPECT_EQ(info.version, LABYRINTH_BOOT_INFO_VERSION);
  EXPECT_EQ(info.num_cpus, 2u);
  EXPECT_EQ(info.tsc_khz, 2'500'000u);
  EXPECT_EQ(info.ram_bytes, 4 * kGiB);
  EXPECT_EQ(info.pool_window_gpa, 5 * kGiB);
  EXPECT_EQ(info.pool_window_size, 1 * kGiB);
  EXPECT_EQ(info.identity_map_end, 6 * kGiB);
  EXPECT_EQ(info.cmdline_len, 13u);
  ASSERT_EQ(info.num_mem_regions, 5u);
  EXPECT_EQ(info.mem[0].type, LABYRINTH_MEM_RESERVED);
  EXPECT_EQ(info.mem[1].base, LABYRINTH_GUEST_LOAD_MIN);
  EXPECT_EQ(info.mem[1].base + info.mem[1].size, 3 * kGiB);
  EXPECT_EQ(info.mem[2].base, LABYRINTH_MMIO_GAP_START);
  EXPECT_EQ(info.mem[3].base, 4 * kGiB);
  EXPECT_EQ(info.mem[3].type, LABYRINTH_MEM_RAM);
  EXPECT_EQ(info.mem[4].type, LABYRINTH_MEM_POOL);
  char cmdline[14] = {};
  ASSERT_TRUE(memory_->read(LABYRINTH_CMDLINE_GPA, std::as_writable_bytes(std::span(cmdline))));
  EXPECT_STREQ(cmdline, "console=ttyS0");
}

TEST_F(BootSetup, GdtHasCodeDataAndTss) {
  EXPECT_EQ(qword(LABYRINTH_GDT_GPA), 0u);
  EXPECT_EQ(qword(LABYRINTH_GDT_GPA + LABYRINTH_SEL_KERNEL_CODE), 0x00AF9B000000FFFFull);  // code64
  EXPECT_EQ(qword(LABYRINTH_GDT_GPA + LABYRINTH_SEL_KERNEL_DATA), 0x00CF93000000FFFFull);  // data
  const uint64_t tss = qword(LABYRINTH_GDT_GPA + LABYRINTH_SEL_TSS);
  EXPECT_EQ((tss >> 40) & 0xFF, 0x8Bu);  // present, busy 64-bit TSS
  EXPECT_EQ(((tss >> 16) & 0xFFFFFF) | ((tss >> 32) & 0xFF000000), kTssGpa);
  EXPECT_EQ(kTssGpa, LABYRINTH_TSS_GPA);
  // The user selectors carry RPL 3 in their low bits: & ~7 is the descriptor's offset.
  EXPECT_EQ(qword(LABYRINTH_GDT_GPA + (LABYRINTH_SEL_USER_CODE & ~7)),
            0x00AFFB000000FFFFull);  // user code64, DPL 3
  EXPECT_EQ(qword(LABYRINTH_GDT_GPA + (LABYRINTH_SEL_USER_DATA & ~7)),
            0x00CFF3000000FFFFull);  // user data, DPL 3
}

TEST_F(BootSetup, RejectsOversizedCommandLine) {
  const std::string big(kMaxCmdline + 1, 'x');
  EXPECT_EQ(write_boot_structures(*memory_, layout_, {1, 0, big}).error(), Error::boot_layout);
}

TEST(LongMode, RegistersFollowTheAbi) {
  const kvm_sregs s = long_mode_sregs(kvm_sregs{});
  EXPECT_EQ(s.cr0 & (kCr0Pe | kCr0Pg), kCr0Pe | kCr0Pg);
  EXPECT_TRUE(s.cr4 & kCr4Pae);
  EXPECT_EQ(s.efer & (kEferLme | kEferLma), kEferLme | kEferLma);
  EXPECT_EQ(s.cr3, LABYRINTH_PAGE_TABLE_GPA);
  EXPECT_EQ(s.cs.selector, LABYRINTH_SEL_KERNEL_CODE);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.ss.selector, LABYRINTH_SEL_KERNEL_DATA);
  EXPECT_EQ(s.tr.selector, LABYRINTH_SEL_TSS);
  const kvm_regs r = entry_regs(0x100078, 3);
  EXPECT_EQ(r.rip, 0x100078u);
  EXPECT_EQ(r.rdi, 3u);
  EXPECT_EQ(r.rsi, LABYRINTH_BOOT_INFO_GPA);
  EXPECT_EQ(r.rflags, 2u);
}

TEST(Cpuid, PerVcpuApicIdAndTopology) {
  std::vector<kvm_cpuid_entry2> supported(3);
  supported[0].function = 1;
  supported[0].ebx = 0x00FF0800;  // CLFLUSH size 8, junk count
  supported[1].function = 0xB;
  supported[1].index = 0;
  supported[2].function = 0xB;
  supported[2].index = 1;
  auto e = vcpu_cpuid(supported, 5, 8);
  EXPECT_EQ(e[0].ebx >> 24, 5u);
  EXPECT_EQ((e[0].ebx >> 16) & 0xFF, 8u);
  EXPECT_EQ((e[0].ebx >> 8) & 0xFF, 8u);  // untouched
  EXPECT_TRUE(e[0].edx & (1u << 28));
  EXPECT_TRUE(e[0].ecx & (1u << 31));
  EXPECT_TRUE(e[0].ecx & kCpuid1EcxTscDeadline) << "Linux would calibrate the LAPIC timer";
  EXPECT_EQ(e[1].edx, 5u);
  EXPECT_EQ(e[2].edx, 5u);
  EXPECT_EQ(e[2].ebx, 8u);
  EXPECT_EQ(e[2].eax, 3u);  // 8 CPUs need 3 bits
}

// The CPU template (Firecracker's rule): '0'/'1' force, 'x' keeps, flags replaced; then the
// per-vCPU topology over it, so one template serves every vCPU.
TEST(Cpuid, TemplateForcesBitsBeforeThePerVcpuTopology) {
  std::vector<kvm_cpuid_entry2> supported(3);
  supported[0].function = 0;
  supported[0].ebx = 0x68747541;  // "Auth"
  supported[1].function = 1;
  supported[1].ecx = (1u << 21) | (1u << 17) | 1u;  // x2apic, pcid, sse3
  supported[2].function = 7;
  supported[2].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  supported[2].ebx = 1u << 10;  // invpcid
  CpuTemplate t;
  t.cpuid_modifiers.push_back(
      {.leaf = 0,
       .subleaf = 0,
       .flags = 0,
       .modifiers = {{CpuidRegister::ebx, {.filter = ~0u, .bits = 0x756e6547}}}});  // "Genu"
  t.cpuid_modifiers.push_back(
      {.leaf = 1,
       .subleaf = 0,
       .flags = 0,
       .modifiers = {
           {CpuidRegister::ecx, {.filter = (1u << 21) | (1u << 17) | (1u << 3), .bits = 1u << 3}},
           {CpuidRegister::ebx, {.filter = 0xFF000000u, .bits = 0x7F000000u}}}});
  t.cpuid_modifiers.push_back({.leaf = 7,
                               .subleaf = 0,
                               .flags = 0,
                               .modifiers = {{CpuidRegister::ebx, {.filter = 1u << 10}}}});
  auto base = apply_cpu_template(supported, t);
  ASSERT_TRUE(base.has_value()) << base.error();
  EXPECT_EQ((*base)[0].ebx, 0x756e6547u);
  EXPECT_EQ((*base)[1].ecx, (1u << 3) | 1u);  // x2apic and pcid cleared, bit 3 set, sse3 kept
  EXPECT_EQ((*base)[2].ebx, 0u);
  EXPECT_EQ((*base)[2].flags, 0u) << "the template's flags replace KVM's";
  EXPECT_EQ(supported[1].ecx, (1u << 21) | (1u << 17) | 1u) << "the input is not changed";
  for (uint32_t vcpu : {0u, 3u}) {
    auto e = vcpu_cpuid(*base, vcpu, 4);
    EXPECT_EQ(e[1].ebx >> 24, vcpu) << "the APIC ID is per vCPU, whatever the template says";
    EXPECT_EQ(e[1].ecx & ((1u << 21) | (1u << 17)), 0u);
    EXPECT_TRUE(e[1].ecx & kCpuid1EcxTscDeadline);
  }
  EXPECT_TRUE(apply_cpu_template(supported, CpuTemplate{}).has_value());
}

// A (leaf, subleaf) KVM does not report is refused, naming the modifier (Firecracker's
// CpuidFeatureNotSupported): no entry is made up.
TEST(Cpuid, TemplateLeafThatKvmLacksIsAnError) {
  std::vector<kvm_cpuid_entry2> supported(2);
  supported[0].function = 1;
  supported[1].function = 7;
  supported[1].index = 0;
  CpuTemplate t;
  t.cpuid_modifiers.push_back({.leaf = 1, .subleaf = 0, .flags = 0, .modifiers = {}});
  t.cpuid_modifiers.push_back({.leaf = 7, .subleaf = 1, .flags = 1, .modifiers = {}});
  auto r = apply_cpu_template(supported, t);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(),
            "cpu-config.cpuid_modifiers[1]: leaf 0x7 subleaf 0x1 is not reported by this host's "
            "KVM (KVM_GET_SUPPORTED_CPUID)");
  t.cpuid_modifiers[1].leaf = 0x40000100;
  t.cpuid_modifiers[1].subleaf = 0;
  EXPECT_NE(apply_cpu_template(supported, t).error().find("leaf 0x40000100 subleaf 0x0"),
            std::string::npos);
}

}  // namespace
}  // namespace labyrinth::vmm
