// vmm/kvm/host_probe.h — what this process's KVM runs on, as the host shows it.
//
//   const HostProbe p = probe_host();      // {"kvm_amd", "TCGTCGTCGTCG"}
//   describe_host(p.module, p.hypervisor)  // vmm/report/host_kind.h names it for reports
//
// Two facts, no judgement: the KVM module loaded (/sys/module/kvm_pvm, kvm_intel,
// kvm_amd, first found) and, from CPUID, whether this kernel itself runs under a
// hypervisor (leaf 1 ECX bit 31) and which (leaf 0x40000000's vendor signature).
#pragma once

#include <string>

namespace labyrinth::vmm {

struct HostProbe {
  std::string module;      // "kvm_amd", "kvm_intel", "kvm_pvm", "" if none found
  std::string hypervisor;  // CPUID vendor signature below us, "" on bare metal
};

HostProbe probe_host();

}  // namespace labyrinth::vmm
