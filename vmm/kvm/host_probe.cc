#include "vmm/kvm/host_probe.h"

#include <cpuid.h>
#include <unistd.h>

#include <cstring>

namespace labyrinth::vmm {

namespace {

bool module_loaded(const char* name) {
  const std::string path = std::string("/sys/module/") + name;
  return ::access(path.c_str(), F_OK) == 0;
}

// The 12-byte signature of leaf 0x40000000 (EBX, ECX, EDX); "" when CPUID says no
// hypervisor is present, so that bare metal never reads a reserved leaf.
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

}  // namespace

HostProbe probe_host() {
  HostProbe p;
  // The first found, in this order, names the module (the report shows one).
  for (const char* m : {"kvm_pvm", "kvm_intel", "kvm_amd"}) {
    if (module_loaded(m)) {
      p.module = m;
      break;
    }
  }
  p.hypervisor = hypervisor_vendor();
  return p;
}

}  // namespace labyrinth::vmm
