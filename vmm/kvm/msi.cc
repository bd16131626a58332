#include "vmm/kvm/msi.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

// GSIs above the 24 IOAPIC pins, handed out once per MSI source and never reused: a
// route's GSI stays valid for the device's life.
uint32_t MsiRouter::allocate_gsi() {
  std::lock_guard lock(mu_);
  return next_gsi_++;
}

// KVM has no per-route update: the whole table (default pins plus every MSI route) is
// rewritten. This runs when a driver programs or moves a vector, never per interrupt.
std::expected<void, Error> MsiRouter::set_msi(uint32_t gsi, uint64_t address, uint32_t data) {
  std::lock_guard lock(mu_);
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_MSI;
  e.u.msi.address_lo = static_cast<uint32_t>(address);
  e.u.msi.address_hi = static_cast<uint32_t>(address >> 32);
  e.u.msi.data = data;
  routes_[gsi] = e;
  std::vector<kvm_irq_routing_entry> table = Vm::default_gsi_routing();
  for (const auto& [g, r] : routes_) table.push_back(r);
  return vm_.set_gsi_routing(table);
}

std::expected<std::unique_ptr<MsiIrq>, Error> MsiIrq::create(Vm& vm, MsiRouter& router) {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    spdlog::error("eventfd: {}", std::strerror(errno));
    return std::unexpected(Error::eventfd_failed);
  }
  return std::unique_ptr<MsiIrq>(new MsiIrq(vm, router, router.allocate_gsi(), std::move(fd)));
}

MsiIrq::~MsiIrq() {
  if (registered_.load(std::memory_order_acquire)) (void)vm_.unregister_irqfd(fd_.get(), gsi_);
}

// The irqfd is registered only once a valid message exists: before that, KVM would have
// no route for the GSI and trigger() must be a no-op (a device may signal before the
// guest has programmed its vector).
bool MsiIrq::configure(uint64_t address, uint32_t data) {
  // x86 MSI: address 0xFEExxxxx; vector (data[7:0]) 16..255 (0-15 are reserved).
  if ((address >> 20) != 0xFEE || (data & 0xFF) < 16) return false;
  std::lock_guard lock(mu_);
  if (!router_.set_msi(gsi_, address, data)) return false;
  if (!registered_.load(std::memory_order_relaxed)) {
    if (!vm_.register_irqfd(fd_.get(), gsi_)) return false;
    registered_.store(true, std::memory_order_release);
  }
  return true;
}

void MsiIrq::trigger() {
  if (!registered_.load(std::memory_order_acquire)) return;
  const uint64_t one = 1;
  while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace labyrinth::vmm
