#include "vmm/boot/bios_handoff.h"

#include <array>

namespace labyrinth::vmm {

std::vector<std::byte> real_mode_ivt() {
  std::vector<std::byte> ivt(256 * 4);
  for (unsigned v = 0; v < 256; ++v) {
    uint16_t stub = kStubIret;
    if (v >= kPicMasterBase && v < kPicMasterBase + 8u) stub = kStubEoiMaster;
    if (v >= kPicSlaveBase && v < kPicSlaveBase + 8u) stub = kStubEoiBoth;
    const uint16_t offset = kBiosStubsOffset + stub;
    ivt[v * 4 + 0] = std::byte(offset & 0xFF);
    ivt[v * 4 + 1] = std::byte(offset >> 8);
    ivt[v * 4 + 2] = std::byte(kBiosSegment & 0xFF);
    ivt[v * 4 + 3] = std::byte(kBiosSegment >> 8);
  }
  return ivt;
}

std::vector<std::byte> bios_irq_stubs() {
  constexpr std::array<uint8_t, 17> code = {
      0xCF,        // kStubIret:      iret
      0x50,        // kStubEoiMaster: push ax
      0xB0, 0x20,  //                 mov al, 0x20 (non-specific EOI)
      0xE6, 0x20,  //                 out 0x20, al
      0x58,        //                 pop ax
      0xCF,        //                 iret
      0x50,        // kStubEoiBoth:   push ax
      0xB0, 0x20,  //                 mov al, 0x20
      0xE6, 0xA0,  //                 out 0xA0, al (slave first)
      0xE6, 0x20,  //                 out 0x20, al
      0x58,        //                 pop ax
      0xCF,        //                 iret
  };

  std::vector<std::byte> out(code.size());
  for (size_t i = 0; i < code.size(); ++i) out[i] = std::byte{code[i]};
  return out;
}

kvm_pic_state bios_pic(kvm_pic_state pic, uint8_t vector_base, uint8_t mask) {
  // What ICW1 (0x11: edge, cascade, ICW4 follows) resets, then ICW2-4 and OCW1.
  pic.last_irr = 0;
  pic.irr = 0;
  pic.isr = 0;
  pic.priority_add = 0;
  pic.read_reg_select = 0;  // OCW3 reads IRR
  pic.poll = 0;
  pic.special_mask = 0;
  pic.rotate_on_auto_eoi = 0;
  pic.init_state = 0;  // initialisation done
  pic.irq_base = vector_base;
  pic.init4 = 1;
  pic.auto_eoi = 0;
  pic.special_fully_nested_mode = 0;
  pic.elcr = 0;    // every line edge triggered
  pic.imr = mask;  // (ICW3's cascade on IRQ 2 is fixed in KVM's model)
  return pic;
}

kvm_pit_state2 bios_pit(kvm_pit_state2 pit) {
  kvm_pit_channel_state& c = pit.channels[0];
  c.count = 0;    // 65536
  c.mode = 2;     // rate generator
  c.rw_mode = 3;  // low byte, then high byte
  c.read_state = 3;
  c.write_state = 3;
  c.bcd = 0;
  c.gate = 1;
  c.latched_count = 0;
  c.count_latched = 0;
  c.status_latched = 0;
  c.write_latch = 0;
  return pit;
}

}  // namespace labyrinth::vmm
