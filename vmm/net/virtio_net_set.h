// vmm/net/virtio_net_set.h — a VM's virtio-net devices ("network-interfaces"), wired to KVM.
//
// For interface i: the TAP device, a VirtioNet behind a VirtioPciTransport in PCI slot
// 1 + i whose BAR0 sits at kBarBase + i * kBarSize in the MMIO gap, three MSI
// interrupts (config, RX, TX: each its own GSI, MSI routing entry and irqfd) and an
// ioeventfd per queue on its notify register (a 16-bit write, as Linux's vp_notify
// does), so the guest's kicks reach the event loop without a userspace exit.
//
//   auto nets = VirtioNetSet::create(cfg.network_interfaces, *vm, router, io, mem, pci, mmio);
//   nets->start();   // event loop thread: the doorbells
//   ...
//   nets->stop();    // before the VM goes; then readings() for vmm/report/
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "vmm/config/nic_settings.h"
#include "vmm/error.h"
#include "vmm/kvm/irqfd.h"
#include "vmm/kvm/msi.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/guest_ram_view.h"
#include "vmm/report/metrics.h"

namespace labyrinth::vmm {

class VirtioNetSet {
 public:
  static constexpr uint32_t kBarBase = 0xD1000000;  // above the lnic windows (0xD0000000)
  static constexpr uint32_t kFirstSlot = 1;         // slot 0 is the host bridge

  static std::expected<std::unique_ptr<VirtioNetSet>, Error> create(
      const std::vector<NetworkInterface>& ifaces, Vm& vm, MsiRouter& router,
      boost::asio::io_context& io, const GuestMemory& memory, devices::PciBus& pci,
      devices::Bus& mmio);
  ~VirtioNetSet();

  void start();   // event loop thread
  void stop();    // event loop thread, or after it stopped
  void pause();   // event loop thread: every interface quiesced (VirtioNet::pause)
  void resume();  // event loop thread
  bool empty() const { return nets_.empty(); }
  const std::vector<std::shared_ptr<devices::virtio::VirtioNet>>& nets() const { return nets_; }
  // Every interface's counters and host_rx histogram for the reports
  // (vmm/report/metrics.h, stats.h). Read after stop().
  std::vector<VirtioNetReading> readings() const;

 private:
  explicit VirtioNetSet(const GuestMemory& memory) : ram_(memory) {}
  void arm(size_t bell);

  GuestRamView ram_;
  std::vector<std::unique_ptr<MsiIrq>> msi_;  // 3 per interface
  std::vector<std::shared_ptr<devices::virtio::VirtioNet>> nets_;
  std::vector<std::shared_ptr<devices::virtio::VirtioPciTransport>> transports_;
  struct Bell {
    std::unique_ptr<IoEventFd> fd;
    size_t net = 0;
    uint16_t queue = 0;
  };
  std::vector<Bell> bells_;
  bool stopped_ = false;
};

}  // namespace labyrinth::vmm
