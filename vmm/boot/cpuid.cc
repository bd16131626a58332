#include "vmm/boot/cpuid.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace labyrinth::vmm {

std::expected<std::vector<kvm_cpuid_entry2>, std::string> apply_cpu_template(
    std::span<const kvm_cpuid_entry2> supported, const CpuTemplate& tmpl) {
  std::vector<kvm_cpuid_entry2> out(supported.begin(), supported.end());
  for (size_t i = 0; i < tmpl.cpuid_modifiers.size(); ++i) {
    const CpuidLeafModifier& m = tmpl.cpuid_modifiers[i];
    // KVM reports index 0 for a leaf without subleaves: (leaf, 0) names it, as in Firecracker.
    auto e = std::find_if(out.begin(), out.end(), [&](const kvm_cpuid_entry2& x) {
      return x.function == m.leaf && x.index == m.subleaf;
    });
    if (e == out.end()) {
      char msg[160];
      (void)std::snprintf(msg, sizeof msg,
                          "cpu-config.cpuid_modifiers[%zu]: leaf 0x%x subleaf 0x%x is not "
                          "reported by this host's KVM (KVM_GET_SUPPORTED_CPUID)",
                          i, m.leaf, m.subleaf);
      return std::unexpected(std::string(msg));
    }
    e->flags = m.flags;
    for (const CpuidRegisterModifier& r : m.modifiers) {
      uint32_t* reg = r.reg == CpuidRegister::eax   ? &e->eax
                      : r.reg == CpuidRegister::ebx ? &e->ebx
                      : r.reg == CpuidRegister::ecx ? &e->ecx
                                                    : &e->edx;
      *reg = r.bitmap.apply(*reg);
    }
  }
  return out;
}

std::vector<kvm_cpuid_entry2> vcpu_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                         uint32_t vcpu_index, uint32_t num_cpus) {
  std::vector<kvm_cpuid_entry2> out(supported.begin(), supported.end());
  // Bits needed to number num_cpus logical CPUs in one package.
  const uint32_t shift = num_cpus <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(num_cpus - 1));
  for (auto& e : out) {
    switch (e.function) {
      case 0x1:
        e.ebx = (e.ebx & 0x0000FFFF) | ((num_cpus & 0xFF) << 16) | ((vcpu_index & 0xFF) << 24);
        if (num_cpus > 1) e.edx |= 1u << 28;  // HTT: EBX[23:16] is valid
        e.ecx |= 1u << 31;                    // hypervisor present
        // KVM's in-kernel LAPIC has the TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER,
        // required at open), but KVM_GET_SUPPORTED_CPUID leaves its bit to userspace.
        // Without it Linux calibrates the LAPIC timer against the PIT at every boot:
        // ticks of real waiting, and a timer it may then disable as unverifiable.
        e.ecx |= kCpuid1EcxTscDeadline;
        break;
      case 0x4:
        e.eax = (e.eax & 0x03FFFFFF) | (((num_cpus - 1) & 0x3F) << 26);
        break;
      case 0xB:
      case 0x1F:
        // Level 0: SMT (one thread per core). Level 1: core, num_cpus of them.
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1u << 8) | 0;
        } else if (e.index == 1) {
          e.eax = shift;
          e.ebx = num_cpus;
          e.ecx = (2u << 8) | 1;
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index;  // level type 0: invalid
        }
        e.edx = vcpu_index;
        break;
      case 0x80000008:
        e.ecx = (e.ecx & ~0xF0FFu) | ((num_cpus - 1) & 0xFF) | (shift << 12);
        break;
      case 0x8000001E:
        e.eax = vcpu_index;  // extended APIC ID
        e.ebx &= ~0xFFu;
        e.ebx |= vcpu_index & 0xFF;  // core ID
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace labyrinth::vmm
