#include "vmm/kvm/kvm.h"

#include "vmm/kvm/kvm_abi.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

namespace {

// What Labyrinth cannot run without, checked once at open so that a host lacking one
// gets a line naming it instead of a failure deep inside VM construction.
struct RequiredCap {
  long cap;
  const char* name;
};
constexpr RequiredCap kRequiredCaps[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER"},  // vcpu_cpuid advertises it
};

// KVM_GET_SUPPORTED_CPUID with a growing buffer (E2BIG means "too small").
std::expected<std::vector<kvm_cpuid_entry2>, Error> query_cpuid(int fd) {
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    const size_t header = sizeof(kvm_abi::CpuidHeader);
    std::vector<std::byte> buf(header + n * sizeof(kvm_cpuid_entry2));
    kvm_abi::CpuidHeader h{n, 0};
    std::memcpy(buf.data(), &h, header);
    if (::ioctl(fd, kvm_abi::kGetSupportedCpuid, buf.data()) == 0) {
      std::memcpy(&h, buf.data(), header);
      std::vector<kvm_cpuid_entry2> out(std::min(h.nent, n));
      std::memcpy(out.data(), buf.data() + header, out.size() * sizeof(kvm_cpuid_entry2));
      return out;
    }
    if (errno != E2BIG) break;
  }
  spdlog::error("KVM_GET_SUPPORTED_CPUID: {}", std::strerror(errno));
  return std::unexpected(Error::kvm_ioctl_failed);
}

}  // namespace

// The supported-CPUID table is read once here: every vCPU's CPUID is built from it
// (vcpu_cpuid), and KVM_GET_SUPPORTED_CPUID is a system-fd ioctl that a vCPU thread's
// seccomp filter does not allow.
std::expected<Kvm, Error> Kvm::open(const char* path) {
  Kvm kvm;
  kvm.fd_ = Fd(::open(path, O_RDWR | O_CLOEXEC));
  if (!kvm.fd_) {
    spdlog::error("open {}: {}", path, std::strerror(errno));
    return std::unexpected(Error::kvm_unavailable);
  }
  const int version = ::ioctl(kvm.fd(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    spdlog::error("KVM_GET_API_VERSION returned {}, need {}", version, KVM_API_VERSION);
    return std::unexpected(Error::kvm_api_version);
  }
  for (const auto& c : kRequiredCaps) {
    if (kvm.check_extension(c.cap) <= 0) {
      spdlog::error("KVM lacks {}", c.name);
      return std::unexpected(Error::kvm_missing_cap);
    }
  }
  const int mmap_size = ::ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size < static_cast<int>(sizeof(kvm_run))) {
    spdlog::error("KVM_GET_VCPU_MMAP_SIZE: {}", std::strerror(errno));
    return std::unexpected(Error::kvm_ioctl_failed);
  }
  kvm.vcpu_mmap_size_ = static_cast<size_t>(mmap_size);
  const int slots = kvm.check_extension(KVM_CAP_NR_MEMSLOTS);
  kvm.max_memslots_ = slots > 0 ? static_cast<uint32_t>(slots) : 32;  // KVM's old minimum
  auto cpuid = query_cpuid(kvm.fd());
  if (!cpuid) return std::unexpected(cpuid.error());
  kvm.cpuid_ = std::move(*cpuid);
  return kvm;
}

// KVM returns 0 for an unknown capability and a negative value only on a bad fd: both
// mean "not available" to the caller.
int Kvm::check_extension(long cap) const noexcept {
  const int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

}  // namespace labyrinth::vmm
