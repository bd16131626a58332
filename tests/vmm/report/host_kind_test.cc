// The host kind, named from what was probed: the words the latency report prints.
#include "vmm/report/host_kind.h"

#include <gtest/gtest.h>

namespace labyrinth::vmm {
namespace {

TEST(HostKind, BareMetal) {
  const HostKind h = describe_host("kvm_intel", "");
  EXPECT_EQ(h.kind, HostKind::Kind::bare);
  EXPECT_EQ(h.description, "bare KVM (kvm_intel)");
  EXPECT_EQ(describe_host("", "").description, "bare KVM (no KVM module)");
}

TEST(HostKind, PvmWithoutAHypervisorBelow) {
  const HostKind h = describe_host("kvm_pvm", "");
  EXPECT_EQ(h.kind, HostKind::Kind::nested_pvm);
  EXPECT_EQ(h.description, "PVM KVM (kvm_pvm)");
}

TEST(HostKind, TcgWhateverTheModule) {
  for (const char* module : {"kvm_amd", "kvm_pvm"}) {
    const HostKind h = describe_host(module, "TCGTCGTCGTCG");
    EXPECT_EQ(h.kind, HostKind::Kind::tcg);
    EXPECT_EQ(h.description, std::string("TCG-emulated (") + module +
                                 " under QEMU TCG: only ratios are meaningful)");
  }
}

TEST(HostKind, NestedNamesTheHypervisorBelow) {
  EXPECT_EQ(describe_host("kvm_pvm", "KVMKVMKVM").description,
            "nested PVM (kvm_pvm under KVM: guest CPL 0 emulated)");
  EXPECT_EQ(describe_host("kvm_pvm", "KVMKVMKVM").kind, HostKind::Kind::nested_pvm);
  const HostKind h = describe_host("kvm_intel", "Microsoft Hv");
  EXPECT_EQ(h.kind, HostKind::Kind::nested);
  EXPECT_EQ(h.description, "nested (kvm_intel under Hyper-V)");
  EXPECT_EQ(describe_host("kvm_amd", "VMwareVMware").description, "nested (kvm_amd under VMware)");
  EXPECT_EQ(describe_host("kvm_intel", "XenVMMXenVMM").description, "nested (kvm_intel under Xen)");
  // An unknown signature is shown as it is.
  EXPECT_EQ(describe_host("", "ACRNACRNACRN").description,
            "nested (no KVM module under ACRNACRNACRN)");
}

}  // namespace
}  // namespace labyrinth::vmm
