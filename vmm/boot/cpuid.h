// vmm/boot/cpuid.h — the CPUID table each vCPU gets, and the CPU template that edits it.
//
// Starts from KVM_GET_SUPPORTED_CPUID; applies the configuration's CPU template
// ("cpu-config", Firecracker's custom CPU template format: cpuid_modifiers only), then
// makes the topology consistent per vCPU: leaf 1 EBX[31:24] = APIC ID (= vCPU index),
// EBX[23:16] = logical CPU count, HTT when more than one; leaves 0xB/0x1F x2APIC ID and
// one core level; leaf 4 EAX[31:26]; AMD 0x80000008 ECX[7:0] and 0x8000001E. The
// hypervisor bit (leaf 1 ECX[31]) is set: the guest is virtualized and KVM's own leaves
// (0x40000000) stay visible. The TSC-deadline timer bit (leaf 1 ECX[24]) is set: KVM's
// in-kernel LAPIC has the mode, but KVM_GET_SUPPORTED_CPUID leaves the bit to userspace
// (QEMU and Firecracker set it too). Nothing else is hidden or added.
//
// The template comes first, as in Firecracker (its CpuConfiguration::apply_template, then
// the per-vCPU normalisation): one template serves every vCPU, and what is per vCPU (APIC
// IDs, counts) or what Labyrinth always sets (hypervisor, TSC deadline) is not the
// template's to fix. Each modifier names a (leaf, subleaf) KVM reports; its flags replace
// the entry's KVM flags and each register becomes (value & ~filter) | bits, i.e. a bitmap
// character '0' or '1' forces that bit and 'x' keeps KVM's. A (leaf, subleaf) KVM does
// not report is an error, as in Firecracker: adding an entry would advertise something
// the host's KVM never offered.
//
//   auto base = apply_cpu_template(kvm.supported_cpuid(), cfg.cpu_template);
//   if (!base) { log(base.error()); ... }          // names the modifier and the leaf
//   auto entries = vcpu_cpuid(*base, index, num_cpus);
//   vcpu->set_cpuid(entries);
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

namespace labyrinth::vmm {

inline constexpr uint32_t kCpuid1EcxTscDeadline = 1u << 24;

enum class CpuidRegister : uint8_t { eax, ebx, ecx, edx };

// One register's bitmap: bits in filter are forced to their value in bits, the rest kept.
struct CpuidBitmap {
  uint32_t filter = 0;
  uint32_t bits = 0;  // always a subset of filter
  uint32_t apply(uint32_t value) const { return (value & ~filter) | bits; }
};

struct CpuidRegisterModifier {
  CpuidRegister reg = CpuidRegister::eax;
  CpuidBitmap bitmap;
};

struct CpuidLeafModifier {
  uint32_t leaf = 0;
  uint32_t subleaf = 0;
  uint32_t flags = 0;  // KVM_CPUID_FLAG_*: replaces the entry's (Firecracker's rule)
  std::vector<CpuidRegisterModifier> modifiers;
};

// "cpu-config": parsed by vmm/config/ (parse_cpu.cc). Empty: KVM's CPUID as it is.
struct CpuTemplate {
  std::vector<CpuidLeafModifier> cpuid_modifiers;
  bool empty() const { return cpuid_modifiers.empty(); }
};

// supported with the template's modifiers applied in order; the error is one line naming
// the first modifier whose (leaf, subleaf) supported lacks.
std::expected<std::vector<kvm_cpuid_entry2>, std::string> apply_cpu_template(
    std::span<const kvm_cpuid_entry2> supported, const CpuTemplate& tmpl);

std::vector<kvm_cpuid_entry2> vcpu_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                         uint32_t vcpu_index, uint32_t num_cpus);

}  // namespace labyrinth::vmm
