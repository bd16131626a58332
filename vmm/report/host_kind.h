// vmm/report/host_kind.h — the kind of KVM host, named for reports.
//
//   const HostProbe p = probe_host();                       // vmm/kvm/host_probe.h
//   describe_host(p.module, p.hypervisor).description
//       // "TCG-emulated (kvm_amd under QEMU TCG: only ratios are meaningful)"
//
// Latency figures mean different things on bare KVM, on a nested KVM (every exit
// goes through a second hypervisor), on a nested PVM KVM (guest CPL 0 emulated) and
// under QEMU's TCG (every instruction emulated: only ratios within one run mean
// anything). The latency report prints the description beside its figures.
#pragma once

#include <string>
#include <string_view>

namespace labyrinth::vmm {

struct HostKind {
  enum class Kind { bare, nested, nested_pvm, tcg, unknown };
  Kind kind = Kind::unknown;
  std::string description;  // one line, e.g. "bare KVM (kvm_intel)"
};

// module: the KVM module loaded ("" if none); hypervisor: the CPUID vendor signature of
// the hypervisor below this kernel ("" on bare metal).
HostKind describe_host(std::string_view module, std::string_view hypervisor);

}  // namespace labyrinth::vmm
