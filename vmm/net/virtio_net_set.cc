#include "vmm/net/virtio_net_set.h"

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

namespace virtio = devices::virtio;

std::expected<std::unique_ptr<VirtioNetSet>, Error> VirtioNetSet::create(
    const std::vector<NetworkInterface>& ifaces, Vm& vm, MsiRouter& router,
    boost::asio::io_context& io, const GuestMemory& memory, devices::PciBus& pci,
    devices::Bus& mmio) {
  std::unique_ptr<VirtioNetSet> set(new VirtioNetSet(memory));
  for (size_t i = 0; i < ifaces.size(); ++i) {
    const NetworkInterface& n = ifaces[i];
    auto tap = devices::open_tap(n.host_dev_name);
    if (!tap) {  // the configuration check opened it a moment ago
      spdlog::error("network-interfaces[{}].host_dev_name: {}", i, tap.error().detail);
      return std::unexpected(Error::net_backend_failed);
    }
    auto net = std::make_shared<virtio::VirtioNet>(virtio::NetConfig{n.iface_id, n.guest_mac}, io,
                                                   std::move(*tap));
    // One MSI-X vector per queue plus the configuration vector: Linux's virtio-net asks
    // for that many and falls back to shared or INTx interrupts otherwise.
    std::vector<devices::MsiLine*> lines;
    for (uint16_t v = 0; v <= net->num_queues(); ++v) {
      auto msi = MsiIrq::create(vm, router);
      if (!msi) return std::unexpected(msi.error());
      lines.push_back(msi->get());
      set->msi_.push_back(std::move(*msi));
    }
    const auto bar = static_cast<uint32_t>(kBarBase + i * virtio::VirtioPciTransport::kBarSize);
    auto transport = std::make_shared<virtio::VirtioPciTransport>(net, set->ram_, bar, lines);
    if (auto r = pci.insert(kFirstSlot + static_cast<uint32_t>(i), transport); !r) {
      spdlog::error("virtio-net {}: PCI slot {} is taken", n.iface_id, kFirstSlot + i);
      return std::unexpected(Error::boot_layout);
    }
    if (auto r = mmio.insert(transport, bar, virtio::VirtioPciTransport::kBarSize); !r) {
      spdlog::error("virtio-net {}: BAR {:#x}: {}", n.iface_id, bar, devices::to_string(r.error()));
      return std::unexpected(Error::boot_layout);
    }
    // Queue notifications are 16-bit writes to a per-queue address in the BAR (notify
    // multiplier 4): ioeventfds complete them inside KVM, no exit to this process.
    for (uint16_t q = 0; q < net->num_queues(); ++q) {
      auto bell = IoEventFd::create(vm, io, transport->notify_gpa(q), 2, false);
      if (!bell) return std::unexpected(bell.error());
      set->bells_.push_back(Bell{std::move(*bell), set->nets_.size(), q});
    }
    set->nets_.push_back(std::move(net));
    set->transports_.push_back(std::move(transport));
  }
  return set;
}

VirtioNetSet::~VirtioNetSet() {
  stop();
  bells_.clear();  // doorbells before the devices, the devices before their interrupts
  transports_.clear();
  nets_.clear();
  msi_.clear();
}

// One wait per queue doorbell, re-armed after each wake; a wake queued when the set
// stops finds stopped_ and ends (the set outlives the event loop's handlers).
void VirtioNetSet::arm(size_t b) {
  bells_[b].fd->async_wait([this, b](uint64_t) {
    if (stopped_) return;
    nets_[bells_[b].net]->notify(bells_[b].queue);
    arm(b);
  });
}

void VirtioNetSet::start() {
  for (size_t b = 0; b < bells_.size(); ++b) arm(b);
}

void VirtioNetSet::pause() {
  for (auto& n : nets_) n->pause();
}

void VirtioNetSet::resume() {
  for (auto& n : nets_) n->resume();
}

void VirtioNetSet::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& n : nets_) n->stop();
}

std::vector<VirtioNetReading> VirtioNetSet::readings() const {
  std::vector<VirtioNetReading> out;
  out.reserve(nets_.size());
  for (size_t i = 0; i < nets_.size(); ++i) {
    const virtio::VirtioNet& n = *nets_[i];
    out.push_back(VirtioNetReading{.id = n.config().id,
                                   .tap_name = n.tap_name(),
                                   .metrics = &n.metrics(),
                                   .latency = &n.latency(),
                                   .transport = &transports_[i]->metrics()});
  }
  return out;
}

}  // namespace labyrinth::vmm
