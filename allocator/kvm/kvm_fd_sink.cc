#include "allocator/kvm/kvm_fd_sink.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

namespace labyrinth::alloc {

KvmFdMemslotSink::KvmFdMemslotSink(int vm_fd, uint32_t first_slot, uint32_t slot_count)
    : vm_fd_(vm_fd), first_slot_(first_slot), used_(slot_count, 0), gpa_(slot_count, 0) {}

std::expected<uint32_t, Error> KvmFdMemslotSink::map(uint64_t gpa, void* host, uint64_t size) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < used_.size(); ++i) {
    if (used_[i] != 0) continue;
    kvm_userspace_memory_region region{};
    region.slot = first_slot_ + i;
    region.guest_phys_addr = gpa;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    if (ioctl(vm_fd_, KVM_SET_USER_MEMORY_REGION, &region) != 0) {
      return std::unexpected(Error::map_failed);
    }
    used_[i] = 1;
    gpa_[i] = gpa;
    return first_slot_ + i;
  }
  return std::unexpected(Error::map_failed);
}

std::expected<void, Error> KvmFdMemslotSink::unmap(uint32_t slot) {
  std::lock_guard lock(mu_);
  if (slot < first_slot_ || slot - first_slot_ >= used_.size() || used_[slot - first_slot_] == 0) {
    return std::unexpected(Error::map_failed);
  }
  const uint32_t i = slot - first_slot_;
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.guest_phys_addr = gpa_[i];
  region.memory_size = 0;  // size 0 deletes the slot
  if (ioctl(vm_fd_, KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    return std::unexpected(Error::map_failed);
  }
  used_[i] = 0;
  return {};
}

}  // namespace labyrinth::alloc
