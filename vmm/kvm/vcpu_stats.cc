#include "vmm/kvm/vcpu_stats.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

namespace {

// struct kvm_stats_desc without its name tail (<linux/kvm.h> declares the tail with
// __DECLARE_FLEX_ARRAY, which C++ sizes differently: see kvm_abi.h).
struct StatsDesc {
  uint32_t flags;
  int16_t exponent;
  uint16_t size;  // u64 values
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(StatsDesc) == 16);

bool pread_all(int fd, void* buf, size_t len, uint64_t off) {
  auto* p = static_cast<std::byte*>(buf);
  while (len > 0) {
    const ssize_t n = ::pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace

std::expected<VcpuStats, Error> VcpuStats::open(const Vcpu& vcpu) {
  Fd fd(::ioctl(vcpu.fd(), KVM_GET_STATS_FD, 0));
  if (!fd) {
    spdlog::debug("vcpu {}: KVM_GET_STATS_FD: {}", vcpu.index(), std::strerror(errno));
    return std::unexpected(Error::kvm_missing_cap);
  }
  kvm_stats_header h{};
  if (!pread_all(fd.get(), &h, sizeof h, 0) || h.name_size == 0 || h.num_desc > 4096 ||
      h.name_size > 4096) {
    spdlog::debug("vcpu {}: unreadable KVM stats header", vcpu.index());
    return std::unexpected(Error::kvm_missing_cap);
  }
  // Descriptors: each a StatsDesc followed by a NUL-terminated name of name_size bytes.
  const size_t each = sizeof(StatsDesc) + h.name_size;
  std::vector<std::byte> descs(each * h.num_desc);
  if (!pread_all(fd.get(), descs.data(), descs.size(), h.desc_offset)) {
    spdlog::debug("vcpu {}: unreadable KVM stats descriptors", vcpu.index());
    return std::unexpected(Error::kvm_missing_cap);
  }
  int64_t exits = -1, wait = -1;
  for (uint32_t i = 0; i < h.num_desc; ++i) {
    StatsDesc d;
    std::memcpy(&d, descs.data() + i * each, sizeof d);
    const char* name = reinterpret_cast<const char*>(descs.data() + i * each + sizeof d);
    const std::string_view n(name, strnlen(name, h.name_size));
    // Only plain cumulative counters of one value (not histograms).
    const bool scalar = d.size == 1 && (d.flags & KVM_STATS_TYPE_MASK) == KVM_STATS_TYPE_CUMULATIVE;
    if (!scalar) continue;
    const int64_t at = int64_t{h.data_offset} + d.offset;
    if (n == "halt_exits") exits = at;
    if (n == "halt_wait_ns") wait = at;
  }
  if (exits < 0) {
    spdlog::debug("vcpu {}: KVM offers no halt_exits statistic", vcpu.index());
    return std::unexpected(Error::kvm_missing_cap);
  }
  return VcpuStats(std::move(fd), exits, wait);
}

std::expected<VcpuStats::Sample, Error> VcpuStats::read() const {
  Sample s;
  if (!pread_all(fd_.get(), &s.halt_exits, sizeof s.halt_exits,
                 static_cast<uint64_t>(exits_offset_)) ||
      (wait_offset_ >= 0 && !pread_all(fd_.get(), &s.halt_wait_ns, sizeof s.halt_wait_ns,
                                       static_cast<uint64_t>(wait_offset_)))) {
    return std::unexpected(Error::io_failed);
  }
  return s;
}

}  // namespace labyrinth::vmm
