#include "vmm/kvm/vm.h"

#include "vmm/kvm/kvm_abi.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

namespace {

// Every failed VM ioctl is logged with its name and errno here, once, so callers only
// propagate the typed error.
std::unexpected<Error> ioctl_failed(const char* what) {
  spdlog::error("{}: {}", what, std::strerror(errno));
  return std::unexpected(Error::kvm_ioctl_failed);
}

}  // namespace

// Lowest free slot first: KVM's slot numbers are small indices into a per-VM array
// (KVM_CAP_NR_MEMSLOTS), and reusing low numbers keeps the pool's slots within it.
std::optional<uint32_t> SlotAllocator::allocate() {
  for (uint32_t i = 0; i < used_.size(); ++i) {
    if (!used_[i]) {
      used_[i] = true;
      ++in_use_;
      return i;
    }
  }
  return std::nullopt;
}

bool SlotAllocator::release(uint32_t slot) {
  if (slot >= used_.size() || !used_[slot]) return false;
  used_[slot] = false;
  --in_use_;
  return true;
}

// The order is KVM's: the TSS and identity-map addresses (needed by Intel's real-mode
// emulation, harmless on AMD) must be set before any vCPU exists, the irqchip before the
// PIT (the PIT delivers through it). Both addresses sit in the MMIO gap below 4 GiB,
// where no RAM slot lies.
std::expected<std::unique_ptr<Vm>, Error> Vm::create(const Kvm& kvm, bool pit) {
  Fd fd(::ioctl(kvm.fd(), KVM_CREATE_VM, 0));
  if (!fd) return ioctl_failed("KVM_CREATE_VM");
  std::unique_ptr<Vm> vm(new Vm(kvm, std::move(fd)));
  if (::ioctl(vm->fd(), KVM_SET_TSS_ADDR, kTssAddr) < 0) return ioctl_failed("KVM_SET_TSS_ADDR");
  if (kvm.check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
    uint64_t addr = kIdentityMapAddr;
    if (::ioctl(vm->fd(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0) {
      return ioctl_failed("KVM_SET_IDENTITY_MAP_ADDR");
    }
  }
  if (::ioctl(vm->fd(), KVM_CREATE_IRQCHIP, 0) < 0) return ioctl_failed("KVM_CREATE_IRQCHIP");
  if (!pit) return vm;  // nothing below concerns a VM without a PIT
  kvm_pit_config pit_config{};
  pit_config.flags = KVM_PIT_SPEAKER_DUMMY;
  if (::ioctl(vm->fd(), KVM_CREATE_PIT2, &pit_config) < 0) return ioctl_failed("KVM_CREATE_PIT2");
  // PIT ticks the guest missed are dropped, not re-injected later (QEMU's
  // kvm-pit.lost_tick_policy=discard, which kvm-unit-tests always asks for). Re-injection
  // makes KVM inhibit AVIC for the whole VM on AMD hosts, and no guest Labyrinth runs
  // keeps time by counting PIT ticks (Linux uses the PIT only to calibrate, then the
  // TSC and the LAPIC timer).
  if (kvm.check_extension(KVM_CAP_REINJECT_CONTROL) > 0) {
    kvm_reinject_control rc{};
    rc.pit_reinject = 0;
    if (::ioctl(vm->fd(), KVM_REINJECT_CONTROL, &rc) < 0)
      return ioctl_failed("KVM_REINJECT_CONTROL");
  }
  return vm;
}

Vm::~Vm() = default;  // closing the VM fd releases every slot, irqfd and ioeventfd

// Called from the pool worker while vCPUs run: slots_mu_ keeps the slot table and KVM's
// view in step. A failed ioctl gives the slot number back so it is not leaked.
std::expected<uint32_t, Error> Vm::add_memslot(uint64_t gpa, uint64_t size, void* host) {
  std::lock_guard lock(slots_mu_);
  const auto slot = slots_.allocate();
  if (!slot) {
    spdlog::error("no free memory slot for gpa {:#x} (+{:#x})", gpa, size);
    return std::unexpected(Error::no_free_memslot);
  }
  kvm_userspace_memory_region region{};
  region.slot = *slot;
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    spdlog::error("KVM_SET_USER_MEMORY_REGION slot {} gpa {:#x} size {:#x}: {}", *slot, gpa, size,
                  std::strerror(errno));
    slots_.release(*slot);
    return std::unexpected(Error::kvm_ioctl_failed);
  }
  spdlog::debug("memslot {}: gpa {:#x} size {:#x}", *slot, gpa, size);
  return *slot;
}

// During teardown the VM fd's close drops every slot at once; deleting them one by one
// then would only cost ioctls (and each makes KVM wait for an SRCU grace period).
std::expected<void, Error> Vm::remove_memslot(uint32_t slot) {
  std::lock_guard lock(slots_mu_);
  if (!slots_.is_used(slot)) return std::unexpected(Error::bad_memslot);
  kvm_userspace_memory_region region{};
  region.slot = slot;  // memory_size 0 deletes the slot
  if (!tearing_down() && ::ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    return ioctl_failed("KVM_SET_USER_MEMORY_REGION (delete)");
  }
  slots_.release(slot);  // is_used() above: cannot fail
  return {};
}

uint32_t Vm::memslots_in_use() const {
  std::lock_guard lock(slots_mu_);
  return slots_.in_use();
}

std::expected<void, Error> Vm::register_irqfd(int efd, uint32_t gsi) {
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(efd);
  req.gsi = gsi;
  if (::ioctl(fd(), KVM_IRQFD, &req) < 0) return ioctl_failed("KVM_IRQFD");
  return {};
}

std::expected<void, Error> Vm::unregister_irqfd(int efd, uint32_t gsi) {
  if (tearing_down()) return {};  // the VM fd's close releases it
  kvm_irqfd req{};
  req.fd = static_cast<uint32_t>(efd);
  req.gsi = gsi;
  req.flags = KVM_IRQFD_FLAG_DEASSIGN;
  if (::ioctl(fd(), KVM_IRQFD, &req) < 0) return ioctl_failed("KVM_IRQFD (deassign)");
  return {};
}

std::expected<void, Error> Vm::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level req{};
  req.irq = gsi;
  req.level = level ? 1 : 0;
  if (::ioctl(fd(), KVM_IRQ_LINE, &req) < 0) return ioctl_failed("KVM_IRQ_LINE");
  return {};
}

std::expected<std::pair<kvm_pic_state, kvm_pic_state>, Error> Vm::pics() const {
  std::pair<kvm_pic_state, kvm_pic_state> out;
  for (uint32_t id : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE}) {
    kvm_irqchip chip{};
    chip.chip_id = id;
    if (::ioctl(fd(), KVM_GET_IRQCHIP, &chip) < 0) return ioctl_failed("KVM_GET_IRQCHIP");
    (id == KVM_IRQCHIP_PIC_MASTER ? out.first : out.second) = chip.chip.pic;
  }
  return out;
}

std::expected<void, Error> Vm::set_pics(const std::pair<kvm_pic_state, kvm_pic_state>& pics) {
  for (uint32_t id : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE}) {
    kvm_irqchip chip{};
    chip.chip_id = id;
    chip.chip.pic = id == KVM_IRQCHIP_PIC_MASTER ? pics.first : pics.second;
    if (::ioctl(fd(), KVM_SET_IRQCHIP, &chip) < 0) return ioctl_failed("KVM_SET_IRQCHIP");
  }
  return {};
}

std::expected<kvm_pit_state2, Error> Vm::pit() const {
  kvm_pit_state2 state{};
  if (::ioctl(fd(), KVM_GET_PIT2, &state) < 0) return ioctl_failed("KVM_GET_PIT2");
  return state;
}

std::expected<void, Error> Vm::set_pit(const kvm_pit_state2& pit) {
  kvm_pit_state2 state = pit;
  if (::ioctl(fd(), KVM_SET_PIT2, &state) < 0) return ioctl_failed("KVM_SET_PIT2");
  return {};
}

// One body for assign and deassign: KVM matches a deassign on every field of the
// assign (address, length, PIO flag, datamatch), so both must be built the same way.
std::expected<void, Error> Vm::ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                         std::optional<uint64_t> datamatch, bool deassign) {
  kvm_ioeventfd req{};
  req.addr = addr;
  req.len = len;
  req.fd = efd;
  if (pio) req.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    req.datamatch = *datamatch;
  }
  if (deassign) req.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  if (::ioctl(fd(), KVM_IOEVENTFD, &req) < 0) return ioctl_failed("KVM_IOEVENTFD");
  return {};
}

std::expected<void, Error> Vm::register_ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                                  std::optional<uint64_t> datamatch) {
  return ioeventfd(efd, addr, len, pio, datamatch, false);
}

std::expected<void, Error> Vm::unregister_ioeventfd(int efd, uint64_t addr, uint32_t len, bool pio,
                                                    std::optional<uint64_t> datamatch) {
  if (tearing_down()) return {};  // the VM fd's close releases it
  return ioeventfd(efd, addr, len, pio, datamatch, true);
}

// KVM_SET_GSI_ROUTING replaces the whole table: the caller passes every route (the
// default pins plus every MSI), never a delta. The ioctl takes a header followed by a
// flexible array, built here in one buffer.
std::expected<void, Error> Vm::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) {
  const size_t header = sizeof(kvm_abi::IrqRoutingHeader);
  std::vector<std::byte> buf(header + entries.size() * sizeof(kvm_irq_routing_entry));
  const kvm_abi::IrqRoutingHeader h{static_cast<uint32_t>(entries.size()), 0};
  std::memcpy(buf.data(), &h, header);
  std::memcpy(buf.data() + header, entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
  if (::ioctl(fd(), kvm_abi::kSetGsiRouting, buf.data()) < 0)
    return ioctl_failed("KVM_SET_GSI_ROUTING");
  return {};
}

// What KVM_CREATE_IRQCHIP installs by itself: GSIs 0-15 on both the PICs and the IOAPIC
// (legacy ISA interrupts reach whichever the guest enables), 16-23 on the IOAPIC only.
// Setting any routing replaces this, so it is rebuilt and prepended to the MSI routes.
std::vector<kvm_irq_routing_entry> Vm::default_gsi_routing() {
  std::vector<kvm_irq_routing_entry> out;
  auto add = [&](uint32_t gsi, uint32_t chip, uint32_t pin) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    out.push_back(e);
  };
  for (uint32_t gsi = 0; gsi < 24; ++gsi) {
    if (gsi < 8)
      add(gsi, KVM_IRQCHIP_PIC_MASTER, gsi);
    else if (gsi < 16)
      add(gsi, KVM_IRQCHIP_PIC_SLAVE, gsi - 8);
    add(gsi, KVM_IRQCHIP_IOAPIC, gsi);
  }
  return out;
}

}  // namespace labyrinth::vmm
