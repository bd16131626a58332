// vmm/kvm/host_kind.h — what kind of KVM this process runs on, for reports.
//
//   const HostKind h = detect_host_kind();
//   std::printf("host: %s\n", h.description.c_str());   // "TCG-emulated (kvm_amd under QEMU TCG)"
//
// Latency figures mean different things on bare KVM, on a nested KVM (every exit
// goes through a second hypervisor), on a nested PVM KVM (guest CPL 0 emulated) and
// under QEMU's TCG (every instruction emulated: only ratios within one run mean
// anything). Detection: the KVM module loaded (/sys/module/kvm_intel, kvm_amd,
// kvm_pvm) and, from CPUID, whether this kernel itself runs under a hypervisor
// (leaf 1 ECX bit 31) and which (leaf 0x40000000's vendor signature).
#pragma once

#include <string>

namespace labyrinth::vmm {

struct HostKind {
  enum class Kind { bare, nested, nested_pvm, tcg, unknown };
  Kind kind = Kind::unknown;
  std::string module;       // "kvm_amd", "kvm_intel", "kvm_pvm", "" if none found
  std::string hypervisor;   // CPUID vendor of the hypervisor below us, "" on bare metal
  std::string description;  // one line, e.g. "bare KVM (kvm_intel)"
};

HostKind detect_host_kind();

}  // namespace labyrinth::vmm
