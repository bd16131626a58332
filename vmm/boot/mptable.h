// vmm/boot/mptable.h — an Intel MultiProcessor Specification 1.4 table for Linux guests.
//
// Without ACPI, Linux learns its CPUs, the IOAPIC and the ISA interrupt routing from
// an MP table (arch/x86/kernel/mpparse.c). It scans the last KiB of base memory
// (0x9FC00) for the floating pointer "_MP_", which points at the configuration table
// "PCMP" right after it. Entries, in the order the spec requires:
//   one processor per vCPU (LAPIC ID = vCPU index, vCPU 0 the bootstrap processor),
//   bus 0 "PCI", bus 1 "ISA", the IOAPIC (ID num_cpus + 1, at LABYRINTH_IOAPIC_GPA),
//   ISA IRQ i -> IOAPIC pin i for i < 16 (KVM's default GSI routing is the identity),
//   ExtINT -> LINT0 and NMI -> LINT1 of every LAPIC.
// Both checksums make their structure's bytes sum to zero. Firecracker and kvmtool
// write the same kind of table.
//
//   auto bytes = make_mptable(kLinuxEbdaGpa, num_cpus);   // <= 1 KiB for 32 vCPUs
//   memory.write(kLinuxEbdaGpa, bytes);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace labyrinth::vmm {

inline constexpr uint8_t kMpIoapicVersion = 0x11, kMpLapicVersion = 0x14;
inline constexpr uint8_t kMpBusPci = 0, kMpBusIsa = 1;
inline constexpr uint32_t kMpIsaIrqs = 16;

// The floating pointer followed by the configuration table, to be placed at gpa
// (16-byte aligned). num_cpus: 1..LABYRINTH_MAX_VCPUS.
std::vector<std::byte> make_mptable(uint64_t gpa, uint32_t num_cpus);

}  // namespace labyrinth::vmm
