#include "vmm/report/host_kind.h"

namespace labyrinth::vmm {

namespace {

// CPUID vendor signatures as people call the hypervisors; others are shown as they are.
std::string hypervisor_name(std::string_view vendor) {
  if (vendor == "KVMKVMKVM") return "KVM";
  if (vendor == "TCGTCGTCGTCG") return "QEMU TCG";
  if (vendor == "Microsoft Hv") return "Hyper-V";
  if (vendor == "VMwareVMware") return "VMware";
  if (vendor == "XenVMMXenVMM") return "Xen";
  return std::string(vendor);
}

}  // namespace

HostKind describe_host(std::string_view module, std::string_view hypervisor) {
  HostKind h;
  const std::string mod = module.empty() ? "no KVM module" : std::string(module);
  // Under TCG every figure is emulated, whatever the module: that is said first. PVM is
  // named on its own, below a hypervisor or not, since it emulates the guest's CPL 0.
  if (hypervisor.empty()) {
    h.kind = module == "kvm_pvm" ? HostKind::Kind::nested_pvm : HostKind::Kind::bare;
    h.description = (module == "kvm_pvm" ? "PVM KVM (" : "bare KVM (") + mod + ")";
  } else if (hypervisor == "TCGTCGTCGTCG") {
    h.kind = HostKind::Kind::tcg;
    h.description = "TCG-emulated (" + mod + " under QEMU TCG: only ratios are meaningful)";
  } else if (module == "kvm_pvm") {
    h.kind = HostKind::Kind::nested_pvm;
    h.description =
        "nested PVM (" + mod + " under " + hypervisor_name(hypervisor) + ": guest CPL 0 emulated)";
  } else {
    h.kind = HostKind::Kind::nested;
    h.description = "nested (" + mod + " under " + hypervisor_name(hypervisor) + ")";
  }
  return h;
}

}  // namespace labyrinth::vmm
