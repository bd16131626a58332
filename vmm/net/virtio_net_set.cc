#include "vmm/net/virtio_net_set.h"

#include <spdlog/spdlog.h>

#include "vmm/report/latency_report.h"

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

void VirtioNetSet::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& n : nets_) n->stop();
}

boost::json::array VirtioNetSet::metrics_json() const {
  boost::json::array out;
  for (size_t i = 0; i < nets_.size(); ++i) {
    const virtio::VirtioNet& n = *nets_[i];
    const virtio::NetMetrics& m = n.metrics();
    const virtio::TransportMetrics& t = transports_[i]->metrics();
    boost::json::object bad;
    for (size_t e = 1; e < m.bad_chains.size(); ++e) {
      const std::string_view name = virtio::to_string(static_cast<virtio::QueueError>(e));
      if (name != "unknown queue error") bad[name] = m.bad_chains[e].get();
    }
    LatencyReport r("virtio-net " + n.config().id);
    r.add("host_rx", "frame read from the TAP -> used ring written and MSI irqfd signalled",
          n.latency().host_rx, m.rx_drop_too_small.get() + m.rx_drop_oversize.get());
    boost::json::object j{
        {"iface_id", n.config().id},
        {"host_dev_name", n.tap_name()},
        {"rx_frames", m.rx_frames.get()},
        {"rx_bytes", m.rx_bytes.get()},
        {"rx_drops", boost::json::object{{"buffer_too_small", m.rx_drop_too_small.get()},
                                         {"oversize", m.rx_drop_oversize.get()}}},
        {"rx_waits_for_buffers", m.rx_waits.get()},
        {"tx_frames", m.tx_frames.get()},
        {"tx_bytes", m.tx_bytes.get()},
        {"tx_drops", boost::json::object{{"backend", m.tx_drop_backend.get()},
                                         {"malformed", m.tx_drop_malformed.get()}}},
        {"irqs", m.irqs.get()},
        {"kicks", boost::json::object{{"rx", m.kicks_rx.get()}, {"tx", m.kicks_tx.get()}}},
        {"malformed_chains", m.bad_chains_total()},
        {"malformed_by_reason", std::move(bad)},
        {"needs_reset", m.needs_reset.get()},
        {"transport", boost::json::object{{"bad_register_access", t.bad_access.load()},
                                          {"features_rejected", t.feature_rejects.load()},
                                          {"queues_rejected", t.queue_rejects.load()},
                                          {"msi_rejected", t.msi_rejects.load()},
                                          {"status_writes_rejected", t.status_rejects.load()},
                                          {"activations", t.activations.load()},
                                          {"resets", t.resets.load()}}},
        {"latency", r.json()}};
    out.push_back(std::move(j));
  }
  return out;
}

std::string VirtioNetSet::report() const {
  std::string out;
  for (const auto& n : nets_) {
    LatencyReport r("virtio-net " + n->config().id + " (TAP " + n->tap_name() + ")");
    r.add("host_rx", "frame read from the TAP -> used ring written and MSI irqfd signalled",
          n->latency().host_rx,
          n->metrics().rx_drop_too_small.get() + n->metrics().rx_drop_oversize.get());
    out += r.table();
  }
  return out;
}

}  // namespace labyrinth::vmm
