#include "vmm/net/lnic_set.h"

#include <spdlog/spdlog.h>

#include "guest/abi/lnic.h"

namespace labyrinth::vmm {

namespace lnic = devices::lnic;

std::expected<std::unique_ptr<LnicSet>, Error> LnicSet::create(
    const std::vector<LnicSettings>& settings, Vm& vm, MsiRouter& router,
    boost::asio::io_context& io, alloc::PagePool& pool, const GuestMemory& memory,
    devices::PciBus& pci, devices::Bus& mmio) {
  // All lnics run on the one device event loop, so they share one pool cache: a cache
  // belongs to one context (no locks on its fast path), and the event loop is one.
  std::unique_ptr<LnicSet> set(new LnicSet(pool, memory));
  set->settings_ = settings;
  if (settings.empty()) return set;
  auto cache = pool.attach_cache();
  if (!cache) {
    spdlog::error("lnic: page pool: {}", alloc::to_string(cache.error()));
    return std::unexpected(Error::pool_failed);
  }
  set->cache_ = *cache;
  for (size_t i = 0; i < settings.size(); ++i) {
    const LnicSettings& s = settings[i];
    std::vector<devices::MsiLine*> lines;
    for (uint32_t v = 0; v < LNIC_MSIX_VECTORS; ++v) {
      auto msi = MsiIrq::create(vm, router);
      if (!msi) return std::unexpected(msi.error());
      lines.push_back(msi->get());
      set->msi_.push_back(std::move(*msi));
    }
    auto backend = lnic::make_backend(s.backend, io);
    if (!backend) {
      spdlog::error("lnic {}: backend: {}", s.id, lnic::to_string(backend.error()));
      return std::unexpected(Error::net_backend_failed);
    }
    lnic::LnicConfig cfg;
    cfg.id = s.id;
    cfg.mac = s.mac;
    cfg.mmio_base = LABYRINTH_DEVICE_MMIO_BASE + i * LNIC_BAR_SIZE;
    cfg.device_owner = kDeviceOwnerBase + static_cast<alloc::OwnerId>(i);
    cfg.guest_owner = kGuestOwnerBase + static_cast<alloc::OwnerId>(i);
    cfg.tsc_offset = 0;  // set_tsc_offset() once the vCPUs exist
    cfg.test_inject_delay_ns = s.test_inject_delay_ns;
    cfg.test_hostile = s.test_hostile;
    auto nic = std::make_shared<lnic::Lnic>(cfg, io, pool, set->cache_, set->ram_, lines,
                                            std::move(*backend));
    auto fn = std::make_shared<lnic::LnicPci>(nic, static_cast<uint32_t>(cfg.mmio_base));
    const auto slot = kFirstSlot + static_cast<uint32_t>(i);
    if (auto r = pci.insert(slot, fn); !r) {
      spdlog::error("lnic {}: PCI slot {} is taken", s.id, slot);
      return std::unexpected(Error::boot_layout);
    }
    if (auto r = mmio.insert(fn, cfg.mmio_base, LNIC_BAR_SIZE); !r) {
      spdlog::error("lnic {}: BAR {:#x}: {}", s.id, cfg.mmio_base, devices::to_string(r.error()));
      return std::unexpected(Error::boot_layout);
    }
    // The two doorbells are ioeventfds: a guest's write completes inside KVM without a
    // return to userspace, and the event loop drains the count later (RETURN and TX are
    // batched by design, so coalesced kicks lose nothing).
    auto ret = IoEventFd::create(vm, io, cfg.mmio_base + LNIC_REG_RET_DOORBELL, 4, false);
    if (!ret) return std::unexpected(ret.error());
    auto tx = IoEventFd::create(vm, io, cfg.mmio_base + LNIC_REG_TX_DOORBELL, 4, false);
    if (!tx) return std::unexpected(tx.error());
    set->nics_.push_back(std::move(nic));
    set->functions_.push_back(std::move(fn));
    set->ret_bells_.push_back(std::move(*ret));
    set->tx_bells_.push_back(std::move(*tx));
  }
  return set;
}

LnicSet::~LnicSet() {
  stop();
  // Doorbells before devices before interrupts: nothing fires into a dead object.
  ret_bells_.clear();
  tx_bells_.clear();
  functions_.clear();
  nics_.clear();
  msi_.clear();
}

void LnicSet::set_tsc_offset(int64_t offset) {
  for (auto& nic : nics_) nic->set_tsc_offset(offset);
}

// One wait per doorbell, re-armed after each wake. The handler holds the device weakly:
// a wake already queued when the set is torn down finds it gone (or stopped_) and ends.
void LnicSet::arm(size_t i, bool ret) {
  IoEventFd& bell = ret ? *ret_bells_[i] : *tx_bells_[i];
  std::weak_ptr<lnic::Lnic> weak = nics_[i];
  bell.async_wait([this, i, ret, weak](uint64_t) {
    auto nic = weak.lock();
    if (!nic || stopped_) return;
    if (ret)
      nic->on_return_doorbell();
    else
      nic->on_tx_doorbell();
    arm(i, ret);
  });
}

// Doorbells first: a backend may deliver at once, and the guest's first RETURN must
// find its doorbell armed. The latency run starts the two halves apart (machine.cc).
void LnicSet::start() {
  start_doorbells();
  start_backends();
}

void LnicSet::start_doorbells() {
  for (size_t i = 0; i < nics_.size(); ++i) {
    arm(i, true);
    arm(i, false);
  }
}

void LnicSet::start_backends() {
  for (auto& nic : nics_) nic->start();
}

// Idempotent (the destructor calls it again). The cache goes back to the pool here,
// after the devices stopped using it: a detach drains it, which needs its one user gone.
void LnicSet::pause() {
  for (auto& nic : nics_) nic->pause();
}

void LnicSet::resume() {
  for (auto& nic : nics_) nic->resume();
}

void LnicSet::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& nic : nics_) nic->stop();
  if (cache_ != nullptr) {
    pool_.detach_cache(cache_);
    cache_ = nullptr;
  }
}

LnicBackendSummary LnicSet::backend_summary(size_t i) const {
  const lnic::BackendConfig& be = settings_[i].backend;
  // The backend as configured (its rate and frame size), named as the backend names itself.
  LnicBackendSummary backend{.name = std::string(nics_[i]->backend().name()),
                             .pktgen = be.type == lnic::BackendType::pktgen};
  if (backend.pktgen) {
    backend.rate_pps = be.pktgen.rate_pps;
    backend.frame_size = be.pktgen.frame_size;
  }
  return backend;
}

LnicReading LnicSet::reading(size_t i) const {
  const lnic::Lnic& n = *nics_[i];
  return LnicReading{.id = settings_[i].id,
                     .backend = backend_summary(i),
                     .backend_stats = n.backend().stats(),
                     .metrics = &n.metrics(),
                     .latency = &n.latency(),
                     .alloc_timer_ticks = n.alloc_timer_ticks(),
                     .pages_with_guest = n.pages_with_guest()};
}

std::vector<LnicReading> LnicSet::readings() const {
  std::vector<LnicReading> out;
  out.reserve(nics_.size());
  for (size_t i = 0; i < nics_.size(); ++i) out.push_back(reading(i));
  return out;
}

}  // namespace labyrinth::vmm
