#include "vmm/kvm/vcpu.h"

#include "vmm/kvm/kvm_abi.h"

#include <sys/ioctl.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "allocator/measure/tsc.h"

namespace labyrinth::vmm {

namespace {

std::unexpected<Error> ioctl_failed(uint32_t index, const char* what) {
  spdlog::error("vcpu {}: {}: {}", index, what, std::strerror(errno));
  return std::unexpected(Error::kvm_ioctl_failed);
}

}  // namespace

// kvm_run is mapped from the vCPU fd itself (exit reason, PIO/MMIO data, the
// immediate_exit flag); its size is the system-wide KVM_GET_VCPU_MMAP_SIZE read at open.
std::expected<std::unique_ptr<Vcpu>, Error> Vcpu::create(const Vm& vm, uint32_t index) {
  Fd fd(::ioctl(vm.fd(), KVM_CREATE_VCPU, static_cast<unsigned long>(index)));
  if (!fd) return ioctl_failed(index, "KVM_CREATE_VCPU");
  auto run = MmapRegion::shared_fd(fd.get(), vm.kvm().vcpu_mmap_size());
  if (!run) return std::unexpected(run.error());
  return std::unique_ptr<Vcpu>(new Vcpu(index, std::move(fd), std::move(*run)));
}

// EINTR/EAGAIN are the stop path (a signal or immediate_exit kicked the vCPU out), not
// failures: the runner checks its stop flag and decides whether to enter again.
std::expected<void, Error> Vcpu::run() {
  if (::ioctl(fd(), KVM_RUN, 0) == 0) return {};
  if (errno == EINTR || errno == EAGAIN) return std::unexpected(Error::interrupted);
  return ioctl_failed(index_, "KVM_RUN");
}

void Vcpu::request_immediate_exit() noexcept {
  // kvm_run is shared with the kernel; the vCPU thread's next KVM_RUN entry reads it.
  // Release pairs with nothing in userspace: the kernel reads it with READ_ONCE.
  std::atomic_ref<uint8_t>(run_data()->immediate_exit).store(1, std::memory_order_release);
}

void Vcpu::clear_immediate_exit() noexcept {
  std::atomic_ref<uint8_t>(run_data()->immediate_exit).store(0, std::memory_order_release);
}

std::expected<kvm_regs, Error> Vcpu::regs() const {
  kvm_regs r{};
  if (::ioctl(fd(), KVM_GET_REGS, &r) < 0) return ioctl_failed(index_, "KVM_GET_REGS");
  return r;
}

std::expected<void, Error> Vcpu::set_regs(const kvm_regs& r) {
  if (::ioctl(fd(), KVM_SET_REGS, &r) < 0) return ioctl_failed(index_, "KVM_SET_REGS");
  return {};
}

std::expected<kvm_sregs, Error> Vcpu::sregs() const {
  kvm_sregs s{};
  if (::ioctl(fd(), KVM_GET_SREGS, &s) < 0) return ioctl_failed(index_, "KVM_GET_SREGS");
  return s;
}

std::expected<void, Error> Vcpu::set_sregs(const kvm_sregs& s) {
  if (::ioctl(fd(), KVM_SET_SREGS, &s) < 0) return ioctl_failed(index_, "KVM_SET_SREGS");
  return {};
}

// Like KVM_SET_GSI_ROUTING: a header and a flexible array, built in one buffer.
std::expected<void, Error> Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) {
  const size_t header = sizeof(kvm_abi::CpuidHeader);
  std::vector<std::byte> buf(header + entries.size() * sizeof(kvm_cpuid_entry2));
  const kvm_abi::CpuidHeader h{static_cast<uint32_t>(entries.size()), 0};
  std::memcpy(buf.data(), &h, header);
  std::memcpy(buf.data() + header, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  if (::ioctl(fd(), kvm_abi::kSetCpuid2, buf.data()) < 0)
    return ioctl_failed(index_, "KVM_SET_CPUID2");
  return {};
}

std::expected<void, Error> Vcpu::set_mp_state(uint32_t state) {
  kvm_mp_state mp{};
  mp.mp_state = state;
  if (::ioctl(fd(), KVM_SET_MP_STATE, &mp) < 0) return ioctl_failed(index_, "KVM_SET_MP_STATE");
  return {};
}

std::expected<uint32_t, Error> Vcpu::tsc_khz() const {
  const int khz = ::ioctl(fd(), KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return ioctl_failed(index_, "KVM_GET_TSC_KHZ");
  return static_cast<uint32_t>(khz);
}

// Guest TSC - host TSC, for turning guest stamps into host time. Measured by reading the
// guest's IA32_TSC between two host rdtscs, 32 times, keeping the tightest pair (its
// half-width is the uncertainty), then cross-checked with KVM's own offset attribute
// where the kernel has one. Both are needed: the attribute alone is wrong under nested
// KVM or TSC scaling, the measurement alone is only as good as its tightest pair.
std::expected<Vcpu::TscOffset, Error> Vcpu::tsc_offset() const {
  constexpr uint32_t kMsrTsc = 0x10;  // IA32_TIME_STAMP_COUNTER
  struct {
    kvm_abi::MsrsHeader header;
    kvm_msr_entry entry;
  } msrs{};
  TscOffset out;
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 32; ++i) {
    msrs.header.nmsrs = 1;
    msrs.entry = kvm_msr_entry{};
    msrs.entry.index = kMsrTsc;
    const uint64_t h0 = measure::rdtsc();
    const int n = ::ioctl(fd(), kvm_abi::kGetMsrs, &msrs);
    const uint64_t h1 = measure::rdtsc();
    if (n != 1) return ioctl_failed(index_, "KVM_GET_MSRS(IA32_TSC)");
    if (h1 - h0 < best) {
      best = h1 - h0;
      const uint64_t mid = h0 + (h1 - h0) / 2;
      out.measured = static_cast<int64_t>(msrs.entry.data - mid);
    }
  }
  out.uncertainty = best / 2 + 1;
  out.offset = out.measured;

  uint64_t attr_value = 0;
  kvm_device_attr attr{};
  attr.group = KVM_VCPU_TSC_CTRL;
  attr.attr = KVM_VCPU_TSC_OFFSET;
  attr.addr = reinterpret_cast<uint64_t>(&attr_value);
  if (::ioctl(fd(), KVM_HAS_DEVICE_ATTR, &attr) == 0 &&
      ::ioctl(fd(), KVM_GET_DEVICE_ATTR, &attr) == 0) {
    const auto offset = static_cast<int64_t>(attr_value);
    // The attribute is L1's offset; it is the guest's only without TSC scaling and
    // when nothing below KVM adds its own. Trust it when the measurement agrees.
    const uint64_t diff = offset > out.measured ? static_cast<uint64_t>(offset - out.measured)
                                                : static_cast<uint64_t>(out.measured - offset);
    if (diff <= out.uncertainty + measure::TscClock::instance().from_ns(1000)) {
      out.offset = offset;
      out.from_attribute = true;
    } else {
      // Expected under TCG (KVM's TSC catch-up rewrites the offset at vCPU loads) and
      // handled: the measurement is used and the latency report says which source it
      // took. Not a warning: a run that is fine prints nothing at the default level.
      spdlog::info(
          "vcpu {}: KVM_VCPU_TSC_OFFSET {} disagrees with the measured guest/host TSC pair {} "
          "(+-{} ticks): using the measurement",
          index_, offset, out.measured, out.uncertainty);
    }
  }
  return out;
}

}  // namespace labyrinth::vmm
