// vmm/boot/bios_handoff.h — the machine state a PC BIOS leaves behind, for the kernels
// that expect one (Multiboot kernels: kvm-unit-tests' x86 tests run after SeaBIOS under
// QEMU, and realmode.flat relies on what it left).
//
// What SeaBIOS leaves and this gives a Multiboot guest:
//   * the real-mode interrupt vector table at 0 (256 far pointers): every vector points
//     at an IRET in the BIOS segment; IRQ 0-7 (vectors 0x08-0x0F) at a stub that sends
//     the master PIC an EOI first, IRQ 8-15 (0x70-0x77) at one that sends both PICs one
//     (a kernel that copies an AP trampoline to page 0 overwrites it, as under QEMU);
//   * the PICs initialised (ICW1-4: edge triggered, 8086 mode, cascade on IRQ 2) with
//     vector bases 0x08 and 0x70, and only IRQ 0 (the timer) and IRQ 2 (the cascade)
//     unmasked;
//   * PIT channel 0 counting in mode 2 from 0 (65536: 18.2 Hz), its output on IRQ 0.
//   * on a wake from ACPI S3, the jump to the FACS firmware waking vector in real mode
//     (s3_resume_sregs/regs: CS = vector >> 4, IP = vector & 0xF, as SeaBIOS's resume
//     path far-jumps), the other vCPUs waiting for INIT/SIPI again.
// So a real-mode `sti; hlt` wakes up at the next timer tick, as it does on a PC (it is
// how realmode.flat's "sti inhibit" ends). Protected-mode tests mask the PICs first
// (kvm-unit-tests' setup does) and never see any of it; the IOAPIC pins stay masked.
//
//   memory.write(0, real_mode_ivt());
//   memory.write(kBiosStubsGpa, bios_irq_stubs());
//   auto pics = vm.pics();  // master, slave
//   vm.set_pics({bios_pic(pics->first, kPicMasterBase, kPicMasterMask),
//                bios_pic(pics->second, kPicSlaveBase, kPicSlaveMask)});
//   vm.set_pit(bios_pit(*vm.pit()));
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace labyrinth::vmm {

// The stubs: at F000:FF00 (0xFFF00), inside the BIOS area [EBDA, 1 MiB) that the e820
// map reserves and clear of the ACPI tables at 0xE0000.
inline constexpr uint16_t kBiosSegment = 0xF000;
inline constexpr uint16_t kBiosStubsOffset = 0xFF00;
inline constexpr uint64_t kBiosStubsGpa = uint64_t{kBiosSegment} * 16 + kBiosStubsOffset;
// Offsets of each stub from kBiosStubsGpa.
inline constexpr uint16_t kStubIret = 0, kStubEoiMaster = 1, kStubEoiBoth = 8;

inline constexpr uint8_t kPicMasterBase = 0x08, kPicSlaveBase = 0x70;
inline constexpr uint8_t kPicMasterMask = 0xFA;  // IRQ 0 and 2 unmasked
inline constexpr uint8_t kPicSlaveMask = 0xFF;

// 1 KiB: the interrupt vector table, for address 0.
std::vector<std::byte> real_mode_ivt();
// The stubs' code, for kBiosStubsGpa.
std::vector<std::byte> bios_irq_stubs();
// `pic` (as KVM_GET_IRQCHIP gave it) after the BIOS's ICW1-4 and OCW1 `mask`.
kvm_pic_state bios_pic(kvm_pic_state pic, uint8_t vector_base, uint8_t mask);
// `pit` (as KVM_GET_PIT2 gave it) with channel 0 programmed as the BIOS does.
kvm_pit_state2 bios_pit(kvm_pit_state2 pit);
// A vCPU after reset, in real mode at the S3 waking vector (a physical address below
// 1 MiB): `sregs` as KVM gave them (its APIC base and the rest are kept).
kvm_sregs s3_resume_sregs(kvm_sregs sregs, uint32_t waking_vector);
kvm_regs s3_resume_regs(uint32_t waking_vector);

}  // namespace labyrinth::vmm
