#include "vmm/kvm/coalesced_pio.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

namespace {
constexpr size_t kPage = 4096;
// struct kvm_coalesced_mmio_ring as the kernel (C) lays it out: u32 first (ours to
// advance), u32 last (KVM's), then the entries (struct kvm_coalesced_mmio) at 8. The
// header's own struct is not used: its flexible array sits behind an empty struct,
// which C++ gives a size (offset 16 in C++, 8 in C).
constexpr size_t kFirst = 0, kLast = 4, kEntries = 8;
static_assert(sizeof(kvm_coalesced_mmio) == 24);
}  // namespace

std::expected<std::unique_ptr<CoalescedPio>, Error> CoalescedPio::create(
    Vm& vm, const Vcpu& vcpu, std::span<const Zone> zones) {
  // KVM_CAP_COALESCED_MMIO answers the ring's page offset inside the vCPU mmap.
  const int page = vm.kvm().check_extension(KVM_CAP_COALESCED_MMIO);
  if (page <= 0 || vm.kvm().check_extension(KVM_CAP_COALESCED_PIO) <= 0) {
    return std::unexpected(Error::kvm_missing_cap);
  }
  const std::span<std::byte> mapping = vcpu.mapping();
  const size_t offset = static_cast<size_t>(page) * kPage;
  if (mapping.size() < offset + kPage) return std::unexpected(Error::kvm_missing_cap);
  for (const Zone& z : zones) {
    kvm_coalesced_mmio_zone req{};
    req.addr = z.port;
    req.size = z.len;
    req.pio = 1;
    if (::ioctl(vm.fd(), KVM_REGISTER_COALESCED_MMIO, &req) < 0) {
      spdlog::error("KVM_REGISTER_COALESCED_MMIO (port {:#x}+{}): {}", z.port, z.len,
                    std::strerror(errno));
      return std::unexpected(Error::kvm_ioctl_failed);
    }
  }
  return std::make_unique<CoalescedPio>(mapping.subspan(offset, kPage));
}

uint32_t CoalescedPio::capacity() const noexcept {
  return static_cast<uint32_t>((page_.size() - kEntries) / sizeof(kvm_coalesced_mmio));
}

// KVM fills the entry, then publishes it by advancing `last` (after a write barrier);
// the consumer reads the entry after an acquire load of `last` and hands the slot back
// by advancing `first` with a release store.
void CoalescedPio::replay(const devices::Bus& pio) {
  auto* first_p = reinterpret_cast<uint32_t*>(page_.data() + kFirst);
  auto* last_p = reinterpret_cast<uint32_t*>(page_.data() + kLast);
  std::atomic_ref<uint32_t> first_ref(*first_p), last_ref(*last_p);
  if (first_ref.load(std::memory_order_relaxed) == last_ref.load(std::memory_order_acquire)) {
    return;
  }
  std::lock_guard lock(mu_);
  const uint32_t cap = capacity();
  uint32_t first = first_ref.load(std::memory_order_relaxed);
  const uint32_t last = last_ref.load(std::memory_order_acquire);
  if (first >= cap || last >= cap) {  // not KVM's: leave the ring alone
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  while (first != last) {
    kvm_coalesced_mmio e{};
    std::memcpy(&e, page_.data() + kEntries + size_t{first} * sizeof(e), sizeof(e));
    // Only port zones are registered; an MMIO entry or a length past data[] is skipped.
    if (e.pio == 1 && e.len >= 1 && e.len <= sizeof(e.data)) {
      pio.write(e.phys_addr, std::span<const uint8_t>(e.data, e.len));
      replayed_.fetch_add(1, std::memory_order_relaxed);
    } else {
      rejected_.fetch_add(1, std::memory_order_relaxed);
    }
    first = (first + 1) % cap;
    first_ref.store(first, std::memory_order_release);
  }
}

}  // namespace labyrinth::vmm
