// vmm/kvm/kvm.h — the KVM system fd (/dev/kvm).
//
//   auto kvm = Kvm::open();                       // checks KVM_GET_API_VERSION == 12
//   if (!kvm) return exit_status_for(kvm.error());
//   auto cpuid = kvm->supported_cpuid();          // KVM_GET_SUPPORTED_CPUID
//   auto vm = Vm::create(*kvm);                   // vmm/kvm/vm.h
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <vector>

#include "vmm/error.h"
#include "vmm/fd.h"

namespace labyrinth::vmm {

class Kvm {
 public:
  // Opens path, checks the API version and the capabilities Labyrinth needs
  // (irqchip, PIT2, irqfd, ioeventfd, immediate_exit, user memory, TSS address).
  static std::expected<Kvm, Error> open(const char* path = "/dev/kvm");

  int fd() const noexcept { return fd_.get(); }
  // KVM_CHECK_EXTENSION: 0 when unsupported, otherwise the capability's value.
  int check_extension(long cap) const noexcept;
  // KVM_GET_SUPPORTED_CPUID (queried once at open()).
  const std::vector<kvm_cpuid_entry2>& supported_cpuid() const noexcept { return cpuid_; }
  // Size of the mmap'able struct kvm_run area of a vCPU fd.
  size_t vcpu_mmap_size() const noexcept { return vcpu_mmap_size_; }
  // Number of memory slots a VM may use (KVM_CAP_NR_MEMSLOTS).
  uint32_t max_memslots() const noexcept { return max_memslots_; }

 private:
  Kvm() = default;
  Fd fd_;
  std::vector<kvm_cpuid_entry2> cpuid_;
  size_t vcpu_mmap_size_ = 0;
  uint32_t max_memslots_ = 0;
};

}  // namespace labyrinth::vmm
