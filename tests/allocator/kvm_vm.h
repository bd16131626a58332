// tests/allocator/kvm_vm.h — a bare KVM VM fd for allocator tests (no vmm/ dependency).
//
//   auto vm = KvmVm::open();           // std::nullopt where /dev/kvm is absent
//   ASSERT_TRUE(vm) << KvmVm::kMissingMessage;   // label *-kvm: never skipped
//   KvmFdMemslotSink sink(vm->vm_fd(), 1, 64);
#pragma once

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <optional>
#include <utility>

namespace labyrinth::alloc::testing {

class KvmVm {
 public:
  static constexpr const char* kMissingMessage =
      "/dev/kvm is needed (this test is labelled *-kvm: run it where KVM works or in the test VM, "
      "scripts/vm.sh)";

  static std::optional<KvmVm> open() {
    const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return std::nullopt;
    const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
      ::close(kvm);
      return std::nullopt;
    }
    return KvmVm(kvm, vm);
  }
  KvmVm(KvmVm&& o) noexcept : kvm_(std::exchange(o.kvm_, -1)), vm_(std::exchange(o.vm_, -1)) {}
  KvmVm& operator=(KvmVm&& o) noexcept {
    if (this != &o) {
      reset();
      kvm_ = std::exchange(o.kvm_, -1);
      vm_ = std::exchange(o.vm_, -1);
    }
    return *this;
  }
  ~KvmVm() { reset(); }
  int kvm_fd() const { return kvm_; }
  int vm_fd() const { return vm_; }

 private:
  KvmVm(int kvm, int vm) : kvm_(kvm), vm_(vm) {}
  void reset() {
    if (vm_ >= 0) ::close(vm_);
    if (kvm_ >= 0) ::close(kvm_);
    vm_ = kvm_ = -1;
  }
  int kvm_;
  int vm_;
};

}  // namespace labyrinth::alloc::testing
