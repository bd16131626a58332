// vmm/boot/acpi.h — the ACPI tables a Linux guest finds its machine in.
//
// Without them Linux logs `ACPI BIOS Error (bug): A valid RSDP was not found` at every
// boot and falls back to the MP table (mptable.h). The tables, written by the VMM into
// the BIOS area (e820-reserved, beside the MP table), each at a 64-byte boundary:
//   RSDP (ACPI 2.0+, at kAcpiTablesGpa, where Linux's scan of 0xE0000-0xFFFFF looks, and
//        handed over in boot_params.acpi_rsdp_addr too) -> XSDT -> FADT, MADT, MCFG;
//   FADT -> FACS, DSDT.
// The FADT is a full one (ACPI 6.5, revision 6), not hardware-reduced: Linux then keeps
// the legacy paths this machine emulates and that an acpi=off kernel uses with the MP
// table — it programs and masks the 8259s, uses the PIT and the IOAPIC as it does today —
// and the only fixed hardware it needs is the PM1a event and control blocks
// (devices/legacy/acpi_pm.h), whose S5 write is a real power-off and whose S3 write a
// suspend to RAM that the RTC alarm wakes. No SMI_CMD (always in ACPI mode), a PM timer
// only with AcpiOptions::pm_timer, no GPE blocks; SCI on IRQ 9, which nothing raises.
// X_FIRMWARE_CTRL names the FACS (FIRMWARE_CTRL with AcpiOptions::facs_32bit).
// IAPC_BOOT_ARCH: legacy devices, an 8042, no VGA (MSI stays allowed: the PCI functions
// only have MSI-X).
// MADT: one enabled local APIC per vCPU (processor UID = APIC ID = vCPU index), the
// IOAPIC (ID vcpus + 1, GSI base 0), the interrupt source override IRQ 9 -> GSI 9 level
// active-high for the SCI, and LINT1 = NMI on every processor. ISA IRQs 0-15 otherwise map
// to the identical GSI, as the MP table says and as KVM's default routing wires them.
// MCFG: one allocation, segment 0, buses 0-0, at kPciEcamGpa — the ECAM window
// (devices/pci/pci_ecam.h) through which Linux reaches configuration space as "MMCONFIG".
// Bus 0 only: Linux takes the MCFG's last bus as the last to probe for peer host bridges
// (pcibios_last_bus), so 0-255 would cost 255 buses of probing at every boot.
// Linux 6.1 accepts the area early if the e820 map reserves it (the whole MMIO gap is
// reserved, linux_loader.cc); later kernels, and the PCI Firmware spec, want it in a
// PNP0C02 motherboard resource's _CRS, which \_SB.MBRD gives. Without an MCFG Linux
// warned "fail to add MMCONFIG information, can't access extended configuration space
// under this bridge" at every boot.
// DSDT (AML built here, no iasl):
//   \_S3      Package {1, 0}: SLP_TYP 1 for AcpiPm, suspend to RAM (vmm/machine.h); only
//             with AcpiOptions::s3
//   \_S5      Package {5, 0}: SLP_TYP 5 for AcpiPm
//   \_SB.PCI0 PNP0A03 host bridge, segment 0, bus 0: _CRS = bus 0 (all there is, and all
//             the MCFG covers: with more, Linux notes that the ECAM "only partially covers
//             this bridge"), the 0xCF8-0xCFF
//             config ports, and the 32-bit window [LABYRINTH_DEVICE_MMIO_BASE, IOAPIC)
//             that holds every BAR the VMM places. No _PRT: the functions have no INTx
//             (interrupt pin 0); they interrupt through MSI-X.
//   \_SB.COM1 PNP0501, ports 0x3F8-0x3FF, IRQ 4
//   \_SB.PS2K PNP0303, ports 0x60 and 0x64, IRQ 1 (no PNP0F13: the i8042 has no AUX port)
//   \_SB.MBRD PNP0C02 motherboard resources: Memory32Fixed, the ECAM window's 1 MiB
//
//   auto bytes = make_acpi_tables(kAcpiTablesGpa, num_cpus);   // < 2 KiB for 32 vCPUs
//   memory.write(kAcpiTablesGpa, bytes);                       // RSDP at its first byte
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace labyrinth::vmm {

// The RSDP's address: 16-byte aligned, inside the BIOS area Linux scans and below 1 MiB
// (e820-reserved from the MP table up, linux_loader.h).
inline constexpr uint64_t kAcpiTablesGpa = 0xE0000;
inline constexpr uint64_t kAcpiTablesMax = 0x100000 - kAcpiTablesGpa;
inline constexpr uint8_t kAcpiSciIrq = 9;
// The PCI ECAM window for bus 0 (devices::PciEcam, 1 MiB), which machine.cc maps and the
// MCFG names: it opens the MMIO gap (LABYRINTH_MMIO_GAP_START), below the BAR window at
// LABYRINTH_DEVICE_MMIO_BASE, where a 256-bus window (256 MiB) would still fit. The gap is
// e820-reserved (linux_loader.cc) and holds no RAM, pool window, IOAPIC or LAPIC.
inline constexpr uint64_t kPciEcamGpa = 0xC0000000;

struct AcpiOptions {
  // The FADT names the PM timer (AcpiPm's PM_TMR): for Multiboot kernels, as QEMU's
  // firmware does; not for Linux, which would spend a PIT-timed rate check on it.
  bool pm_timer = false;
  // The DSDT offers \_S3 (suspend to RAM, AcpiPm): for Multiboot kernels (kvm-unit-tests'
  // s3). Not for Linux until its resume is tested here (the lnic driver has no PM ops).
  bool s3 = false;
  // The FADT names the FACS in FIRMWARE_CTRL (32 bits), not X_FIRMWARE_CTRL, as QEMU's
  // does: kvm-unit-tests read only the 32-bit field.
  bool facs_32bit = false;
};
// Every table, RSDP first, laid out from gpa (16-byte aligned). num_cpus:
// 1..LABYRINTH_MAX_VCPUS.
std::vector<std::byte> make_acpi_tables(uint64_t gpa, uint32_t num_cpus, AcpiOptions options = {});
// Where make_acpi_tables(gpa, ...) puts the FACS (whatever the vCPU count): the
// firmware waking vector an S3 wake jumps to is at its offset 12.
uint64_t acpi_facs_gpa(uint64_t gpa);

}  // namespace labyrinth::vmm
