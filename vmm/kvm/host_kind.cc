#include "vmm/kvm/host_kind.h"

#include <cpuid.h>
#include <unistd.h>

#include <cstring>

namespace labyrinth::vmm {

namespace {

bool module_loaded(const char* name) {
  const std::string path = std::string("/sys/module/") + name;
  return ::access(path.c_str(), F_OK) == 0;
}

std::string hypervisor_vendor() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) == 0 || (c & (1u << 31)) == 0) return "";
  __cpuid(0x40000000, a, b, c, d);
  char vendor[13] = {};
  std::memcpy(vendor + 0, &b, 4);
  std::memcpy(vendor + 4, &c, 4);
  std::memcpy(vendor + 8, &d, 4);
  std::string v(vendor);
  return v.empty() ? "unknown hypervisor" : v;
}

std::string hypervisor_name(const std::string& vendor) {
  if (vendor == "KVMKVMKVM") return "KVM";
  if (vendor == "TCGTCGTCGTCG") return "QEMU TCG";
  if (vendor == "Microsoft Hv") return "Hyper-V";
  if (vendor == "VMwareVMware") return "VMware";
  if (vendor == "XenVMMXenVMM") return "Xen";
  return vendor;
}

}  // namespace

HostKind detect_host_kind() {
  HostKind h;
  for (const char* m : {"kvm_pvm", "kvm_intel", "kvm_amd"}) {
    if (module_loaded(m)) {
      h.module = m;
      break;
    }
  }
  h.hypervisor = hypervisor_vendor();
  const std::string mod = h.module.empty() ? "no KVM module" : h.module;
  if (h.hypervisor.empty()) {
    h.kind = h.module == "kvm_pvm" ? HostKind::Kind::nested_pvm : HostKind::Kind::bare;
    h.description = (h.module == "kvm_pvm" ? "PVM KVM (" : "bare KVM (") + mod + ")";
  } else if (h.hypervisor == "TCGTCGTCGTCG") {
    h.kind = HostKind::Kind::tcg;
    h.description = "TCG-emulated (" + mod + " under QEMU TCG: only ratios are meaningful)";
  } else if (h.module == "kvm_pvm") {
    h.kind = HostKind::Kind::nested_pvm;
    h.description = "nested PVM (" + mod + " under " + hypervisor_name(h.hypervisor) +
                    ": guest CPL 0 emulated)";
  } else {
    h.kind = HostKind::Kind::nested;
    h.description = "nested (" + mod + " under " + hypervisor_name(h.hypervisor) + ")";
  }
  return h;
}

}  // namespace labyrinth::vmm
