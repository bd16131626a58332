// vmm/kvm/kvm_abi.h — KVM ioctls whose <linux/kvm.h> structs C++ gets wrong.
//
// Debian 12's uapi headers declare the variable-length tails of kvm_cpuid2,
// kvm_irq_routing and kvm_msrs with __DECLARE_FLEX_ARRAY, which in C++ adds an empty struct
// member: sizeof becomes 12 instead of 8, the entries move to offset 12, and the
// ioctl numbers (which encode the size) change — KVM answers EINVAL. These are the
// C layouts, with the ioctl numbers computed from them.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace labyrinth::vmm::kvm_abi {

struct CpuidHeader {  // struct kvm_cpuid2 without its tail; kvm_cpuid_entry2[nent] follows
  uint32_t nent;
  uint32_t padding;
};
struct IrqRoutingHeader {  // struct kvm_irq_routing; kvm_irq_routing_entry[nr] follows
  uint32_t nr;
  uint32_t flags;
};
struct MsrsHeader {  // struct kvm_msrs; kvm_msr_entry[nmsrs] follows
  uint32_t nmsrs;
  uint32_t pad;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(IrqRoutingHeader) == 8 && sizeof(MsrsHeader) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_irq_routing_entry) == 48);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);

}  // namespace labyrinth::vmm::kvm_abi
