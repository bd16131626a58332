#include "vmm/net/lnic_set.h"

#include <spdlog/spdlog.h>

#include "guest/abi/lnic.h"

namespace labyrinth::vmm {

namespace lnic = devices::lnic;

std::expected<std::unique_ptr<LnicSet>, Error> LnicSet::create(
    const std::vector<LnicSettings>& settings, Vm& vm, MsiRouter& router,
    boost::asio::io_context& io, alloc::PagePool& pool, const GuestMemory& memory,
    devices::Bus& mmio) {
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
    auto msi = MsiIrq::create(vm, router);
    if (!msi) return std::unexpected(msi.error());
    auto backend = lnic::make_backend(s.backend, io);
    if (!backend) {
      spdlog::error("lnic {}: backend: {}", s.id, lnic::to_string(backend.error()));
      return std::unexpected(Error::net_backend_failed);
    }
    lnic::LnicConfig cfg;
    cfg.id = s.id;
    cfg.mac = s.mac;
    cfg.mmio_base = LABYRINTH_DEVICE_MMIO_BASE + i * LNIC_MMIO_SIZE;
    cfg.device_owner = kDeviceOwnerBase + static_cast<alloc::OwnerId>(i);
    cfg.guest_owner = kGuestOwnerBase + static_cast<alloc::OwnerId>(i);
    cfg.tsc_offset = 0;  // set_tsc_offset() once the vCPUs exist
    cfg.test_inject_delay_ns = s.test_inject_delay_ns;
    auto nic = std::make_shared<lnic::Lnic>(cfg, io, pool, set->cache_, set->ram_, **msi,
                                            std::move(*backend));
    if (auto r = mmio.insert(nic, cfg.mmio_base, LNIC_MMIO_SIZE); !r) {
      spdlog::error("lnic {}: MMIO window {:#x}: {}", s.id, cfg.mmio_base,
                    devices::to_string(r.error()));
      return std::unexpected(Error::net_backend_failed);
    }
    auto ret = IoEventFd::create(vm, io, cfg.mmio_base + LNIC_REG_RET_DOORBELL, 4, false);
    if (!ret) return std::unexpected(ret.error());
    auto tx = IoEventFd::create(vm, io, cfg.mmio_base + LNIC_REG_TX_DOORBELL, 4, false);
    if (!tx) return std::unexpected(tx.error());
    set->msi_.push_back(std::move(*msi));
    set->nics_.push_back(std::move(nic));
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
  nics_.clear();
  msi_.clear();
}

void LnicSet::set_tsc_offset(int64_t offset) {
  for (auto& nic : nics_) nic->set_tsc_offset(offset);
}

void LnicSet::describe(labyrinth_boot_info& info) const {
  for (size_t i = 0; i < nics_.size() && info.num_devices < LABYRINTH_MAX_DEVICES; ++i) {
    labyrinth_device_desc& d = info.devices[info.num_devices++];
    d = labyrinth_device_desc{};
    d.type = LABYRINTH_DEV_LNIC;
    d.gsi = msi_[i]->gsi();
    d.mmio_base = nics_[i]->config().mmio_base;
    d.mmio_size = LNIC_MMIO_SIZE;
    std::copy(settings_[i].mac.begin(), settings_[i].mac.end(), d.mac);
  }
}

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

void LnicSet::stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& nic : nics_) nic->stop();
  if (cache_ != nullptr) {
    pool_.detach_cache(cache_);
    cache_ = nullptr;
  }
}

boost::json::array LnicSet::metrics_json() const {
  boost::json::array out;
  for (size_t i = 0; i < nics_.size(); ++i) {
    const lnic::Lnic& n = *nics_[i];
    const lnic::LnicMetrics& m = n.metrics();
    const lnic::BackendStats b = n.backend().stats();
    boost::json::object j;
    j["id"] = settings_[i].id;
    j["backend"] = std::string(n.backend().name());
    j["rx_frames"] = m.rx_frames.get();
    j["rx_bytes"] = m.rx_bytes.get();
    j["rx_drops"] = boost::json::object{
        {"no_page", m.rx_drop_no_page.get()},         {"ring_full", m.rx_drop_ring_full.get()},
        {"not_running", m.rx_drop_not_running.get()}, {"oversize", m.rx_drop_oversize.get()},
        {"bad_ring", m.rx_drop_bad_ring.get()},       {"generator_overrun", b.overrun}};
    j["tx_frames"] = m.tx_frames.get();
    j["tx_bytes"] = m.tx_bytes.get();
    j["tx_drops"] = m.tx_drop_backend.get();
    j["irqs"] = m.irqs.get();
    j["pages_returned"] = m.pages_returned.get();
    j["guest_samples_early"] = m.guest_stamp_early.get();
    j["alloc_timer_ticks"] = n.alloc_timer_ticks();
    j["alloc_samples_net_zero"] = m.alloc_net_zero.get();
    j["floor"] = boost::json::object{{"sent", m.floor_sent.get()},
                                     {"missed", m.floor_missed.get()},
                                     {"early", m.floor_early.get()}};
    j["pages_with_guest"] = n.pages_with_guest();
    j["doorbells"] =
        boost::json::object{{"return", m.ret_doorbells.get()}, {"tx", m.tx_doorbells.get()}};
    j["violations"] = boost::json::object{{"bad_address", m.viol_bad_address.get()},
                                          {"not_owner", m.viol_not_owner.get()},
                                          {"double_return", m.viol_double_free.get()},
                                          {"stale", m.viol_stale.get()},
                                          {"bad_index", m.viol_bad_index.get()},
                                          {"bad_tx_descriptor", m.viol_bad_tx.get()},
                                          {"bad_register_access", m.mmio_bad_access.get()},
                                          {"rejected_config", m.config_errors.get()}};
    if (b.generated != 0) {
      j["pktgen"] = boost::json::object{{"generated", b.generated},
                                        {"overrun", b.overrun},
                                        {"max_lateness_ns", b.max_lateness_ns}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace labyrinth::vmm
