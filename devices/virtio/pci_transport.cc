#include "devices/virtio/pci_transport.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "devices/virtio/virtio_abi.h"

namespace labyrinth::devices::virtio {

namespace {
constexpr uint8_t kCapCommon = 0x40, kCapNotify = 0x50, kCapIsr = 0x64, kCapDevice = 0x74,
                  kCapMsix = 0x84;
constexpr auto put32 = PciType0Config::put32;

// struct virtio_pci_cap at off.
void put_vendor_cap(std::array<uint8_t, 256>& c, uint8_t off, uint8_t next, uint8_t len,
                    uint8_t type, uint32_t bar_off, uint32_t bar_len) {
  c[off] = kPciCapVendor;
  c[off + 1] = next;
  c[off + 2] = len;
  c[off + 3] = type;
  c[off + 4] = 0;  // BAR 0
  put32(c, off + 8, bar_off);
  put32(c, off + 12, bar_len);
}

// A BAR access as a little-endian value of its width (1, 2, 4 or 8 bytes) and back.
uint64_t load(std::span<const uint8_t> data) {
  uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min<size_t>(data.size(), 8));
  return v;
}
void store(std::span<uint8_t> data, uint64_t v) {
  std::memcpy(data.data(), &v, std::min<size_t>(data.size(), 8));
}
}  // namespace

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestRam& ram,
                                       uint32_t bar_gpa, std::vector<MsiLine*> lines)
    : device_(std::move(device)),
      ram_(ram),
      bar_gpa_(bar_gpa),
      msix_(std::span(lines).first(std::min<size_t>(lines.size(), kMaxVectors))),
      nvec_(msix_.size()),
      label_("virtio-pci-" + std::string(device_->label())),
      queues_(std::min<size_t>(device_->num_queues(), kMaxVectors - 1)),
      // Class: network controller / Ethernet for net, "other" otherwise; revision 1: a
      // modern (virtio 1.x) device.
      cfg_(PciId{.vendor = kPciVendor,
                 .device = static_cast<uint16_t>(kPciDeviceBase + device_->device_id()),
                 .class_code = device_->device_id() == kNetDeviceId ? 0x020000u : 0xFF0000u,
                 .revision = 1,
                 .subsystem_vendor = kPciVendor,
                 .subsystem = 0x40},
           bar_gpa_, kBarSize, kCapCommon, kCapMsix, msix_) {
  // The config space is built once here, read-only parts and the capability chain
  // (common -> notify -> ISR -> device -> MSI-X); read_config overlays the few fields
  // the driver can change (command, BAR probe, interrupt line, MSI-X control).
  for (auto& v : queue_vector_) v.store(kMsixNoVector, std::memory_order_relaxed);
  for (auto& q : queues_) q.size = device_->max_queue_size();
  const uint16_t nq = static_cast<uint16_t>(queues_.size());
  auto& c = cfg_.image();
  put_vendor_cap(c, kCapCommon, kCapNotify, 16, kPciCapCommonCfg, kCommonOff, common::kSize);
  put_vendor_cap(c, kCapNotify, kCapIsr, 20, kPciCapNotifyCfg, kNotifyOff, kNotifyMultiplier * nq);
  put32(c, kCapNotify + 16, kNotifyMultiplier);
  put_vendor_cap(c, kCapIsr, kCapDevice, 16, kPciCapIsrCfg, kIsrOff, 1);
  put_vendor_cap(c, kCapDevice, kCapMsix, 16, kPciCapDeviceCfg, kDeviceOff, 0x1000);
  MsixTable::put_capability(c, kCapMsix, 0, nvec_, kMsixTableOff, kMsixPbaOff);
}

// --- PCI configuration space ---------------------------------------------------------

uint32_t VirtioPciTransport::read_config(uint8_t offset) {
  std::lock_guard lock(mu_);
  return cfg_.read(offset);
}

void VirtioPciTransport::write_config(uint8_t offset, uint32_t value, uint32_t mask) {
  std::lock_guard lock(mu_);
  cfg_.write(offset, value, mask);
}

// --- BAR0 ---------------------------------------------------------------------------

void VirtioPciTransport::read(uint64_t offset, std::span<uint8_t> data) {
  const size_t w = data.size();
  if (offset < kCommonOff + common::kSize) {
    std::lock_guard lock(mu_);
    store(data, read_common(static_cast<uint32_t>(offset), w));
  } else if (offset == kIsrOff && w == 1) {
    data[0] = isr_.exchange(0, std::memory_order_acq_rel);  // read clears
  } else if (offset >= kDeviceOff && offset + w <= kDeviceOff + 0x1000) {
    device_->read_config(static_cast<uint32_t>(offset - kDeviceOff), data);
  } else if (offset >= kMsixTableOff && offset < kMsixPbaOff) {
    if (!msix_.read_table(offset - kMsixTableOff, data)) {
      metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (offset >= kMsixPbaOff) {
    if (!msix_.read_pba(offset - kMsixPbaOff, data)) {
      metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (offset >= kNotifyOff && offset < kNotifyOff + 0x1000) {
    store(data, 0);  // notify registers read as 0
  } else {
    metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
  }
}

void VirtioPciTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  const size_t w = data.size();
  const uint64_t value = load(data);
  if (offset < kCommonOff + common::kSize) {
    std::lock_guard lock(mu_);
    write_common(static_cast<uint32_t>(offset), w, value);
  } else if (offset >= kDeviceOff && offset + w <= kDeviceOff + 0x1000) {
    device_->write_config(static_cast<uint32_t>(offset - kDeviceOff), data);
  } else if (offset >= kNotifyOff && offset < kNotifyOff + kNotifyMultiplier * queues_.size() &&
             (offset - kNotifyOff) % kNotifyMultiplier == 0) {
    // Only when no ioeventfd caught it (tests, or a write of another width).
    device_->notify(static_cast<uint16_t>((offset - kNotifyOff) / kNotifyMultiplier));
  } else if (offset >= kMsixTableOff && offset < kMsixPbaOff) {
    // A refused message leaves the vector silent: the driver finds no interrupts.
    auto r = msix_.write_table(offset - kMsixTableOff, data);
    if (!r) {
      auto& counter =
          r.error() == MsixError::rejected_message ? metrics_.msi_rejects : metrics_.bad_access;
      counter.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
  }
}

// A common-config field answers only at its own offset and width (virtio 1.2, 4.1.3.1:
// the driver accesses each field with its width); anything else is a bad access.
// The 64-bit ring addresses also take two 32-bit halves, as Linux writes them.
uint32_t VirtioPciTransport::read_common(uint32_t offset, size_t w) {
  using namespace common;
  QueueRegs* q = queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
  auto field = [&](uint32_t at, size_t width) { return offset == at && w == width; };
  if (field(kDeviceFeatureSelect, 4)) return device_feature_select_;
  if (field(kDeviceFeature, 4)) {
    return device_feature_select_ < 2
               ? static_cast<uint32_t>(device_->features() >> (32 * device_feature_select_))
               : 0;
  }
  if (field(kDriverFeatureSelect, 4)) return driver_feature_select_;
  if (field(kDriverFeature, 4)) {
    return driver_feature_select_ < 2
               ? static_cast<uint32_t>(driver_features_ >> (32 * driver_feature_select_))
               : 0;
  }
  if (field(kMsixConfig, 2)) return config_vector_.load(std::memory_order_relaxed);
  if (field(kNumQueues, 2)) return static_cast<uint32_t>(queues_.size());
  if (field(kDeviceStatus, 1)) {
    // DEVICE_NEEDS_RESET is the transport's own (a queue missing at DRIVER_OK) or the
    // running device's (a corrupt ring, virtio_device.h).
    const bool failed = (status_ & kStatusDriverOk) != 0 && device_->needs_reset();
    return status_ | (failed ? kStatusNeedsReset : 0u);
  }
  if (field(kConfigGeneration, 1)) return 0;  // the config never changes in one read
  if (field(kQueueSelect, 2)) return queue_select_;
  if (field(kQueueSize, 2)) return q ? q->size : 0;
  if (field(kQueueMsixVector, 2)) {
    return q ? queue_vector_[queue_select_].load(std::memory_order_relaxed) : kMsixNoVector;
  }
  if (field(kQueueEnable, 2)) return q && q->enabled ? 1 : 0;
  if (field(kQueueNotifyOff, 2)) return q ? queue_select_ : 0;
  for (uint32_t at : {kQueueDesc, kQueueDriver, kQueueDevice}) {
    if (q == nullptr || offset < at || offset >= at + 8 || (w != 4 && w != 8)) continue;
    const uint64_t v = at == kQueueDesc ? q->desc : at == kQueueDriver ? q->driver : q->device;
    return static_cast<uint32_t>(offset == at ? v : v >> 32);
  }
  metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// As read_common. Queue setup is frozen once a queue is enabled or the device is live
// (DRIVER_OK): the event loop holds copies of the rings, which must not change under it.
void VirtioPciTransport::write_common(uint32_t offset, size_t w, uint64_t value) {
  using namespace common;
  QueueRegs* q = queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr;
  const bool live = (status_ & kStatusDriverOk) != 0;
  auto field = [&](uint32_t at, size_t width) { return offset == at && w == width; };
  if (field(kDeviceFeatureSelect, 4)) {
    device_feature_select_ = static_cast<uint32_t>(value);
  } else if (field(kDriverFeatureSelect, 4)) {
    driver_feature_select_ = static_cast<uint32_t>(value);
  } else if (field(kDriverFeature, 4) && driver_feature_select_ < 2 &&
             (status_ & kStatusFeaturesOk) == 0) {
    const unsigned shift = 32 * driver_feature_select_;
    driver_features_ = (driver_features_ & ~(uint64_t{0xFFFFFFFF} << shift)) | (value << shift);
  } else if (field(kMsixConfig, 2)) {
    config_vector_.store(value < nvec_ ? static_cast<uint16_t>(value) : kMsixNoVector,
                         std::memory_order_relaxed);
  } else if (field(kDeviceStatus, 1)) {
    write_status(static_cast<uint8_t>(value));
  } else if (field(kQueueSelect, 2)) {
    queue_select_ = static_cast<uint16_t>(value);
  } else if (q != nullptr && !live && !q->enabled && field(kQueueSize, 2)) {
    q->size = static_cast<uint16_t>(value);  // checked at queue_enable
  } else if (q != nullptr && field(kQueueMsixVector, 2)) {
    // A vector the table does not have reads back as NO_VECTOR: the driver checks.
    queue_vector_[queue_select_].store(value < nvec_ ? static_cast<uint16_t>(value) : kMsixNoVector,
                                       std::memory_order_relaxed);
  } else if (q != nullptr && !live && field(kQueueEnable, 2)) {
    if (value != 1 || q->enabled) return;
    auto sq = SplitQueue::create(ram_, q->size, q->desc, q->driver, q->device);
    if (!sq) {
      metrics_.queue_rejects.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("{}: queue {} rejected: {}", label_, queue_select_, to_string(sq.error()));
      return;  // stays disabled: the driver reads 0 back
    }
    q->queue.emplace(*sq);
    q->enabled = true;
  } else if (q != nullptr && !live && !q->enabled && (w == 4 || w == 8) && offset >= kQueueDesc &&
             offset + w <= kQueueDevice + 8) {
    const uint32_t at = kQueueDesc + (offset - kQueueDesc) / 8 * 8;
    uint64_t& reg = at == kQueueDesc ? q->desc : at == kQueueDriver ? q->driver : q->device;
    if (w == 8) {
      reg = value;
    } else if (offset == at) {
      reg = (reg & 0xFFFFFFFF00000000ull) | (value & 0xFFFFFFFFull);
    } else {
      reg = (reg & 0xFFFFFFFFull) | (value << 32);
    }
  } else {
    metrics_.bad_access.fetch_add(1, std::memory_order_relaxed);
  }
}

void VirtioPciTransport::write_status(uint8_t status) {
  if (status == 0) {
    reset_locked();
    return;
  }
  // Bits only ever get added until the reset. Clearing DRIVER_OK and setting it again
  // would activate the device a second time with the queues as queue_enable left them:
  // it would take up chains it has given back already (a TX frame sent twice, a frame
  // written into an RX buffer the driver owns again) and move used.idx backwards.
  const auto driver_bits = static_cast<uint8_t>(status_ & ~kStatusNeedsReset);
  if ((status & driver_bits) != driver_bits) {
    metrics_.status_rejects.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if ((status & kStatusFeaturesOk) != 0 && (status_ & kStatusFeaturesOk) == 0) {
    const uint64_t offered = device_->features();
    if ((driver_features_ & ~offered) != 0 || (driver_features_ & kFVersion1) == 0) {
      metrics_.feature_rejects.fetch_add(1, std::memory_order_relaxed);
      status &= static_cast<uint8_t>(~kStatusFeaturesOk);  // the driver reads it back and fails
    }
  }
  const bool starting = (status & kStatusDriverOk) != 0 && (status_ & kStatusDriverOk) == 0;
  status_ = static_cast<uint8_t>(status | (status_ & kStatusNeedsReset));  // the device's bit
  if (!starting) return;
  std::vector<SplitQueue> queues;
  for (auto& q : queues_) {
    if (!q.enabled || !q.queue) {
      metrics_.queue_rejects.fetch_add(1, std::memory_order_relaxed);
      status_ |= kStatusNeedsReset;
      return;
    }
    queues.push_back(*q.queue);
  }
  metrics_.activations.fetch_add(1, std::memory_order_relaxed);
  device_->activate(driver_features_, std::move(queues), *this);
}

// Needs mu_. Back to the state after power-on, except the MSI-X table: the table is
// the PCI function's, not the virtio device's, and a virtio reset leaves it alone.
void VirtioPciTransport::reset_locked() {
  if ((status_ & kStatusDriverOk) != 0) device_->reset();
  metrics_.resets.fetch_add(1, std::memory_order_relaxed);
  status_ = 0;
  driver_features_ = 0;
  device_feature_select_ = driver_feature_select_ = 0;
  queue_select_ = 0;
  for (auto& q : queues_) q = QueueRegs{.size = device_->max_queue_size()};
  for (auto& v : queue_vector_) v.store(kMsixNoVector, std::memory_order_relaxed);
  config_vector_.store(kMsixNoVector, std::memory_order_relaxed);
  isr_.store(0, std::memory_order_relaxed);
}

// --- Interrupts ----------------------------------------------------------------------

// From the device's thread, lock-free. The ISR bit is set even with MSI-X in use:
// harmless, and it is what a driver that polls the ISR expects.
void VirtioPciTransport::signal_queue(uint16_t q) {
  isr_.fetch_or(kIsrQueue, std::memory_order_release);
  if (q < queue_vector_.size()) msix_.fire(queue_vector_[q].load(std::memory_order_relaxed));
}

void VirtioPciTransport::signal_config() {
  isr_.fetch_or(kIsrConfig, std::memory_order_release);
  msix_.fire(config_vector_.load(std::memory_order_relaxed));
}

}  // namespace labyrinth::devices::virtio
