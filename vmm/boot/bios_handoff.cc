#include "vmm/boot/bios_handoff.h"

#include <array>

namespace labyrinth::vmm {

std::vector<std::byte> real_mode_ivt() {
  std::vector<std::byte> ivt(size_t{256} * 4);
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

kvm_sregs s3_resume_sregs(kvm_sregs s, uint32_t waking_vector) {
  const auto real = [](kvm_segment& seg, uint16_t selector, uint8_t type) {
    seg = kvm_segment{};
    seg.selector = selector;
    seg.base = uint64_t{selector} << 4;
    seg.limit = 0xFFFF;
    seg.type = type;
    seg.present = 1;
    seg.s = 1;
  };
  real(s.cs, static_cast<uint16_t>(waking_vector >> 4), 0xB);  // code, read, accessed
  for (kvm_segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) real(*seg, 0, 0x3);
  s.tr = kvm_segment{};
  s.tr.limit = 0xFFFF;
  s.tr.type = 0xB;  // busy TSS, as at reset
  s.tr.present = 1;
  s.ldt = kvm_segment{};
  s.ldt.limit = 0xFFFF;
  s.ldt.type = 0x2;
  s.ldt.present = 1;
  s.gdt = kvm_dtable{.base = 0, .limit = 0xFFFF, .padding = {}};
  s.idt = kvm_dtable{.base = 0, .limit = 0x3FF, .padding = {}};  // the real-mode IVT
  s.cr0 = 0x60000010;                                            // CD | NW | ET: the reset value
  s.cr2 = s.cr3 = s.cr4 = s.cr8 = 0;
  s.efer = 0;
  for (auto& word : s.interrupt_bitmap) word = 0;  // nothing pending across the sleep
  return s;
}

kvm_regs s3_resume_regs(uint32_t waking_vector) {
  kvm_regs r{};
  r.rip = waking_vector & 0xF;
  r.rflags = 0x2;
  return r;
}

}  // namespace labyrinth::vmm
