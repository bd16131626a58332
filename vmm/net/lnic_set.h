// vmm/net/lnic_set.h — a VM's lnics, wired to KVM.
//
// For lnic i: a PCI function (devices/lnic/lnic_pci.h) in slot kFirstSlot + i whose
// BAR0 sits at LABYRINTH_DEVICE_MMIO_BASE + i * LNIC_BAR_SIZE, LNIC_MSIX_VECTORS MSI
// interrupts (each its own GSI, routing entry and irqfd; the route is rewritten when
// the guest unmasks an MSI-X entry), its backend, and ioeventfd doorbells for the RETURN
// and TX registers (guest writes there never reach userspace as exits; the event loop
// reads the eventfd). All lnics of the VM share the event loop's page-pool cache (one
// context). Guests find them by scanning the PCI bus, as any PCI device.
//
//   auto nics = LnicSet::create(settings, *vm, router, io, *pool, ram, pci, mmio);
//   nics->set_tsc_offset(vcpu0->tsc_offset()->offset);   // once the vCPUs exist
//   nics->start();                // on the event loop thread: backends begin
//   ...
//   nics->stop();                 // before the pool and the VM go
//   metrics_json(pool, nics->readings(), ...);   // vmm/report/ writes what they counted
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "allocator/page_pool.h"
#include "devices/bus/bus.h"
#include "devices/lnic/lnic.h"
#include "devices/lnic/lnic_pci.h"
#include "devices/pci/pci_bus.h"
#include "vmm/config/nic_settings.h"
#include "vmm/error.h"
#include "vmm/kvm/irqfd.h"
#include "vmm/kvm/msi.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/guest_ram_view.h"
#include "vmm/report/metrics.h"

namespace labyrinth::vmm {

class LnicSet {
 public:
  // Owner ids in the page pool: device i owns kDeviceOwnerBase + i while it holds a page,
  // the guest driver kGuestOwnerBase + i while the guest holds it via NIC i.
  static constexpr alloc::OwnerId kDeviceOwnerBase = 0x100;
  static constexpr alloc::OwnerId kGuestOwnerBase = 0x200;
  // PCI slots kFirstSlot.. (virtio-net takes 1..8, slot 0 is the host bridge).
  static constexpr uint32_t kFirstSlot = 16;

  static std::expected<std::unique_ptr<LnicSet>, Error> create(
      const std::vector<LnicSettings>& settings, Vm& vm, MsiRouter& router,
      boost::asio::io_context& io, alloc::PagePool& pool, const GuestMemory& memory,
      devices::PciBus& pci, devices::Bus& mmio);
  ~LnicSet();

  // Setup only (before the threads run): guest TSC = host TSC + offset.
  void set_tsc_offset(int64_t offset);
  void start();  // event loop thread: doorbells and backends
  void start_doorbells();
  void start_backends();
  void stop();    // event loop thread (or after it stopped)
  void pause();   // event loop thread: every lnic quiesced (Lnic::pause)
  void resume();  // event loop thread
  bool empty() const { return nics_.empty(); }
  std::vector<std::shared_ptr<devices::lnic::Lnic>>& nics() { return nics_; }
  // NIC i's counters and histograms for the reports (vmm/report/metrics.h), and all of
  // them. Read after stop(): the histograms are the event loop's while it runs.
  LnicReading reading(size_t i) const;
  LnicBackendSummary backend_summary(size_t i) const;  // any time after create()
  std::vector<LnicReading> readings() const;

 private:
  LnicSet(alloc::PagePool& pool, const GuestMemory& memory) : pool_(pool), ram_(memory) {}
  void arm(size_t i, bool ret);

  alloc::PagePool& pool_;
  GuestRamView ram_;
  alloc::PageCache* cache_ = nullptr;  // the event loop's context
  std::vector<LnicSettings> settings_;
  std::vector<std::unique_ptr<MsiIrq>> msi_;
  std::vector<std::shared_ptr<devices::lnic::Lnic>> nics_;
  std::vector<std::shared_ptr<devices::lnic::LnicPci>> functions_;
  std::vector<std::unique_ptr<IoEventFd>> ret_bells_, tx_bells_;
  bool stopped_ = false;
};

}  // namespace labyrinth::vmm
