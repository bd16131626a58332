// vmm/kvm/vcpu_stats.h — what KVM itself counts for one vCPU: its halts.
//
//   auto stats = VcpuStats::open(*vcpu);   // setup: KVM_GET_STATS_FD, descriptors parsed
//   ...
//   if (stats) {
//     auto before = stats->read();         // two pread64s of the stats fd
//     ...                                  // the guest runs
//     auto after = stats->read();          // after->halt_exits - before->halt_exits
//   }
//
// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): a header, descriptors (name,
// type, offset) and a block of u64 values, read at offsets; the values are live. Read here:
//   halt_exits    HLT instructions the vCPU executed (x86: counted by KVM's HLT intercept,
//                 with the in-kernel irqchip too, where the halt never reaches userspace)
//   halt_wait_ns  time the vCPU spent blocked waiting for a wake-up after halting
//                 (halt-polling time excluded); absent on some kernels: then 0, has_wait false
// This is how the VMM observes, rather than assumes, whether a guest halts while idle.
// A kernel without the stats fd or without halt_exits: open() fails (kvm_missing_cap).
// The fd cannot seek (KVM's stats files ignore lseek): read() uses pread64, which a
// seccomp-confined thread needs allowed on fd() (sandbox/seccomp.h: the event loop).
#pragma once

#include <cstdint>
#include <expected>

#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/vcpu.h"

namespace labyrinth::vmm {

class VcpuStats {
 public:
  struct Sample {
    uint64_t halt_exits = 0;
    uint64_t halt_wait_ns = 0;  // 0 when the kernel does not offer it
  };

  static std::expected<VcpuStats, Error> open(const Vcpu& vcpu);
  std::expected<Sample, Error> read() const;
  bool has_wait() const { return wait_offset_ >= 0; }
  int fd() const { return fd_.get(); }

 private:
  VcpuStats(Fd fd, int64_t exits_offset, int64_t wait_offset)
      : fd_(std::move(fd)), exits_offset_(exits_offset), wait_offset_(wait_offset) {}
  Fd fd_;
  int64_t exits_offset_;  // file offsets of the u64 values
  int64_t wait_offset_;   // -1: not offered
};

}  // namespace labyrinth::vmm
