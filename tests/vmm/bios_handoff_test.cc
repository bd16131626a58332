// The BIOS hand-off for Multiboot kernels (vmm/boot/bios_handoff.h): the IVT, its stubs
// decoded, and the PIC and PIT states as KVM will be given them.
#include "vmm/boot/bios_handoff.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace labyrinth::vmm {
namespace {

uint8_t u8(const std::vector<std::byte>& b, size_t at) {
  return static_cast<uint8_t>(b.at(at));
}
uint16_t u16(const std::vector<std::byte>& b, size_t at) {
  return static_cast<uint16_t>(u8(b, at) | u8(b, at + 1) << 8);
}

TEST(BiosHandoff, EveryVectorPointsAtAStubAndTheIrqVectorsAtAnEoi) {
  const auto ivt = real_mode_ivt();
  ASSERT_EQ(ivt.size(), 1024u);
  for (unsigned v = 0; v < 256; ++v) {
    EXPECT_EQ(u16(ivt, v * 4 + 2), kBiosSegment) << v;
    const uint16_t stub = u16(ivt, v * 4) - kBiosStubsOffset;
    const uint16_t want = v >= 0x08 && v <= 0x0F   ? kStubEoiMaster
                          : v >= 0x70 && v <= 0x77 ? kStubEoiBoth
                                                   : kStubIret;
    EXPECT_EQ(stub, want) << "vector " << v;
  }
  EXPECT_EQ(kBiosStubsGpa, 0xFFF00u);
}

TEST(BiosHandoff, TheStubsSendTheirEoisAndReturn) {
  const auto s = bios_irq_stubs();
  ASSERT_GE(s.size(), kStubEoiBoth + 9u);
  EXPECT_EQ(u8(s, kStubIret), 0xCF);  // iret
  // push ax; mov al, 0x20; out 0x20, al; pop ax; iret
  const std::vector<uint8_t> master = {0x50, 0xB0, 0x20, 0xE6, 0x20, 0x58, 0xCF};
  for (size_t i = 0; i < master.size(); ++i) EXPECT_EQ(u8(s, kStubEoiMaster + i), master[i]) << i;
  // push ax; mov al, 0x20; out 0xA0, al; out 0x20, al; pop ax; iret
  const std::vector<uint8_t> both = {0x50, 0xB0, 0x20, 0xE6, 0xA0, 0xE6, 0x20, 0x58, 0xCF};
  for (size_t i = 0; i < both.size(); ++i) EXPECT_EQ(u8(s, kStubEoiBoth + i), both[i]) << i;
  // Inside the BIOS area, clear of the ACPI tables' 64 KiB at 0xE0000, below 1 MiB.
  EXPECT_GE(kBiosStubsGpa, 0xF0000u);
  EXPECT_LE(kBiosStubsGpa + s.size(), 0x100000u);
}

TEST(BiosHandoff, PicsAreInitialisedWithTheBiosBasesAndOnlyTimerAndCascadeOpen) {
  kvm_pic_state reset{};
  reset.init_state = 1;  // mid-initialisation, with stale bits everywhere
  reset.irr = reset.isr = reset.last_irr = 0xFF;
  reset.elcr = 0x0C;
  reset.elcr_mask = 0xF8;
  reset.auto_eoi = 1;
  const kvm_pic_state m = bios_pic(reset, kPicMasterBase, kPicMasterMask);
  EXPECT_EQ(m.irq_base, 0x08);
  EXPECT_EQ(m.imr, 0xFA);  // IRQ 0 (timer) and 2 (cascade) unmasked
  EXPECT_EQ(m.init_state, 0);
  EXPECT_EQ(m.init4, 1);
  EXPECT_EQ(m.irr | m.isr | m.last_irr | m.elcr | m.auto_eoi, 0);
  EXPECT_EQ(m.elcr_mask, 0xF8) << "KVM's own, kept";
  const kvm_pic_state s = bios_pic(reset, kPicSlaveBase, kPicSlaveMask);
  EXPECT_EQ(s.irq_base, 0x70);
  EXPECT_EQ(s.imr, 0xFF);
}

TEST(BiosHandoff, PitChannelZeroRunsInModeTwoFromZero) {
  kvm_pit_state2 reset{};
  reset.channels[0].mode = 0xFF;
  reset.channels[1].mode = 0xFF;
  reset.flags = 0;
  const kvm_pit_state2 p = bios_pit(reset);
  EXPECT_EQ(p.channels[0].mode, 2);
  EXPECT_EQ(p.channels[0].count, 0u);  // 65536: 18.2 Hz
  EXPECT_EQ(p.channels[0].rw_mode, 3);
  EXPECT_EQ(p.channels[0].gate, 1);
  EXPECT_EQ(p.channels[1].mode, 0xFF) << "the other channels untouched";
}

}  // namespace
}  // namespace labyrinth::vmm
