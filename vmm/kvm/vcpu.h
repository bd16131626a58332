// vmm/kvm/vcpu.h — one KVM vCPU: its fd and the mmap'd struct kvm_run.
//
//   auto vcpu = Vcpu::create(vm, /*index=*/0).value();
//   vcpu->set_cpuid(entries); vcpu->set_sregs(s); vcpu->set_regs(r);
//   while (...) {
//     auto r = vcpu->run();                // KVM_RUN; Error::interrupted after a kick
//     switch (vcpu->run_data()->exit_reason) { ... }
//   }
//
// Only the thread that runs the vCPU calls run() and the register accessors; any
// thread may call request_immediate_exit() (the stop path, see vmm/vcpu_runner.h).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <span>

#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/vm.h"
#include "vmm/mmap_region.h"

namespace labyrinth::vmm {

class Vcpu {
 public:
  // KVM_CREATE_VCPU with id = index (which is also its initial LAPIC ID).
  static std::expected<std::unique_ptr<Vcpu>, Error> create(const Vm& vm, uint32_t index);

  uint32_t index() const noexcept { return index_; }
  int fd() const noexcept { return fd_.get(); }
  kvm_run* run_data() const noexcept { return reinterpret_cast<kvm_run*>(run_.data()); }
  // The whole vCPU mmap (KVM_GET_VCPU_MMAP_SIZE bytes): kvm_run, then KVM's extra pages
  // (the coalesced ring, vmm/kvm/coalesced_pio.h).
  std::span<std::byte> mapping() const noexcept { return {run_.data(), run_.size()}; }

  // KVM_RUN. Error::interrupted when a signal or immediate_exit ended it early.
  std::expected<void, Error> run();
  // Makes the current or next KVM_RUN return at once (kvm_run.immediate_exit = 1).
  // Pair with a signal to the vCPU thread to interrupt a KVM_RUN in progress.
  void request_immediate_exit() noexcept;
  // The vCPU thread, before entering again after a pause (vcpu_runner.h).
  void clear_immediate_exit() noexcept;

  std::expected<kvm_regs, Error> regs() const;
  std::expected<void, Error> set_regs(const kvm_regs& regs);
  std::expected<kvm_sregs, Error> sregs() const;
  std::expected<void, Error> set_sregs(const kvm_sregs& sregs);
  std::expected<void, Error> set_cpuid(std::span<const kvm_cpuid_entry2> entries);
  std::expected<void, Error> set_mp_state(uint32_t state);  // KVM_MP_STATE_*
  // KVM_GET_TSC_KHZ: the guest TSC frequency.
  std::expected<uint32_t, Error> tsc_khz() const;

  // The guest's TSC against the host's: guest TSC = host TSC + offset. Standard KVM
  // starts a new VM's TSC near 0 (offset ~ -host TSC); other hosts differ, so it is
  // read, never assumed. Source: KVM's per-vCPU attribute KVM_VCPU_TSC_OFFSET
  // (KVM_VCPU_TSC_CTRL group, Linux 5.16+) where offered, checked against a measured
  // pair; otherwise the measured pair alone: the guest's MSR_IA32_TSC read with
  // KVM_GET_MSRS between two host RDTSCs, the tightest of 32 tries (its half-width
  // is the uncertainty). Call after every vCPU exists (KVM re-synchronises the TSCs
  // of vCPUs created within a second of each other) and before the guest writes
  // its TSC.
  struct TscOffset {
    int64_t offset = 0;
    bool from_attribute = false;  // KVM_VCPU_TSC_OFFSET (else: measured)
    uint64_t uncertainty = 0;     // ticks, of the measured pair
    int64_t measured = 0;         // the measured pair's offset (always taken)
  };
  std::expected<TscOffset, Error> tsc_offset() const;

 private:
  Vcpu(uint32_t index, Fd fd, MmapRegion run)
      : index_(index), fd_(std::move(fd)), run_(std::move(run)) {}
  uint32_t index_;
  Fd fd_;
  MmapRegion run_;  // must be unmapped before fd_ is closed: declared after it
};

}  // namespace labyrinth::vmm
