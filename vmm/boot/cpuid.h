// vmm/boot/cpuid.h — the CPUID table each vCPU gets.
//
// Starts from KVM_GET_SUPPORTED_CPUID and makes the topology consistent per vCPU:
// leaf 1 EBX[31:24] = APIC ID (= vCPU index), EBX[23:16] = logical CPU count, HTT
// when more than one; leaves 0xB/0x1F x2APIC ID and one core level; leaf 4
// EAX[31:26]; AMD 0x80000008 ECX[7:0] and 0x8000001E. The hypervisor bit (leaf 1
// ECX[31]) is set: the guest is virtualized and KVM's own leaves (0x40000000) stay
// visible. The TSC-deadline timer bit (leaf 1 ECX[24]) is set: KVM's in-kernel LAPIC
// has the mode, but KVM_GET_SUPPORTED_CPUID leaves the bit to userspace (QEMU and
// Firecracker set it too). Nothing else is hidden or added.
//
//   auto entries = vcpu_cpuid(kvm.supported_cpuid(), index, num_cpus);
//   vcpu->set_cpuid(entries);
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace labyrinth::vmm {

inline constexpr uint32_t kCpuid1EcxTscDeadline = 1u << 24;

std::vector<kvm_cpuid_entry2> vcpu_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                         uint32_t vcpu_index, uint32_t num_cpus);

}  // namespace labyrinth::vmm
