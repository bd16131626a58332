// devices/virtio/pci_transport.h — the virtio 1.x PCI transport (modern only) with MSI-X.
//
// One PCI function (vendor 0x1AF4, device 0x1040 + device id, revision 1) with one
// 32-bit memory BAR holding every register block the vendor capabilities point at:
//
//   BAR0 + 0x0000  common config (struct virtio_pci_common_cfg, 0x38 bytes)
//   BAR0 + 0x1000  ISR status (read clears)
//   BAR0 + 0x2000  device config (the device's read_config/write_config)
//   BAR0 + 0x3000  notify: queue q at + 4 * q (notify_off_multiplier 4); vmm/ binds an
//                  ioeventfd there, a write that still arrives here is forwarded too
//   BAR0 + 0x4000  MSI-X table (num_queues + 1 vectors, 16 bytes each)
//   BAR0 + 0x5000  MSI-X PBA
//
// The BAR is placed by the VMM (no firmware) and does not move: the guest's size probe
// (all-ones) is answered, other writes to it are ignored. No INTx (interrupt pin 0): the
// driver must enable MSI-X, as Linux's virtio_pci does when the capability is there.
// VIRTIO_PCI_CAP_PCI_CFG (config-space window into the BAR) is not offered.
//
// The register side validates what the driver writes: features it was not offered (or
// without VIRTIO_F_VERSION_1) leave FEATURES_OK clear; a queue whose size or ring
// addresses SplitQueue::create rejects stays disabled; MSI-X messages go through
// MsiLine::configure, which refuses unusable ones; a device status write that clears a
// bit the driver set (virtio 1.2, 2.1.1: the driver MUST NOT; writing 0, the reset, is
// the way back) is ignored, so the device is activated at most once per reset. Each is
// counted. device_status reads DEVICE_NEEDS_RESET when DRIVER_OK found a queue
// disabled, or while the running device says needs_reset() (it stopped on a corrupt
// ring and signalled a configuration change); the reset clears both.
//
//   auto t = std::make_shared<VirtioPciTransport>(net, ram, bar_gpa, msi_lines);
//   pci.insert(slot, t);  mmio.insert(t, bar_gpa, VirtioPciTransport::kBarSize);
//
// The MSI-X table, PBA and masks are an MsixTable (devices/pci/msix.h); the transport
// places them in its BAR and config space and maps queues to vectors.
//
// Threads: config space and BAR accesses on vCPU threads under mu_ (lock order:
// Bus::devices_mu_ / PciBus::mu_ -> VirtioPciTransport::mu_ -> the device's lock, and
// -> MsixTable::mu_). signal_queue/signal_config come from the device's thread and take
// no lock: MsixTable::fire is lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/bus/bus.h"
#include "devices/guest_ram.h"
#include "devices/msi_line.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/type0_config.h"
#include "devices/virtio/virtio_abi.h"
#include "devices/virtio/virtio_device.h"

namespace labyrinth::devices::virtio {

struct TransportMetrics {
  std::atomic<uint64_t> bad_access{0};       // undefined offset or width, read-only write
  std::atomic<uint64_t> feature_rejects{0};  // FEATURES_OK refused
  std::atomic<uint64_t> queue_rejects{0};    // queue_enable with a bad size or ring address
  std::atomic<uint64_t> msi_rejects{0};      // an unmasked MSI-X entry with an unusable message
  std::atomic<uint64_t> status_rejects{0};   // a status write that clears a bit (not a reset)
  std::atomic<uint64_t> activations{0}, resets{0};
};

class VirtioPciTransport final : public PciFunction, public BusDevice, public VirtioInterrupt {
 public:
  static constexpr uint64_t kBarSize = 0x8000;
  static constexpr uint32_t kCommonOff = 0x0000, kIsrOff = 0x1000, kDeviceOff = 0x2000,
                            kNotifyOff = 0x3000, kNotifyMultiplier = 4, kMsixTableOff = 0x4000,
                            kMsixPbaOff = 0x5000;
  static constexpr uint32_t kMaxVectors = 16;  // queues + 1 at most

  // lines: num_queues() + 1 MSI lines (vector i -> lines[i]); they outlive the transport.
  VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestRam& ram, uint32_t bar_gpa,
                     std::vector<MsiLine*> lines);

  std::string_view label() const override { return label_; }
  // PCI configuration space.
  uint32_t read_config(uint8_t offset) override;
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override;
  // BAR0 (MMIO bus).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  // VirtioInterrupt.
  void signal_queue(uint16_t q) override;
  void signal_config() override;

  uint64_t notify_gpa(uint16_t q) const { return bar_gpa_ + kNotifyOff + kNotifyMultiplier * q; }
  uint32_t bar_gpa() const { return bar_gpa_; }
  const TransportMetrics& metrics() const { return metrics_; }
  VirtioDevice& device() { return *device_; }

 private:
  struct QueueRegs {
    uint16_t size = 0;
    bool enabled = false;
    uint64_t desc = 0, driver = 0, device = 0;
    std::optional<SplitQueue> queue;  // set by a valid queue_enable
  };

  uint32_t read_common(uint32_t offset, size_t width);  // needs mu_
  void write_common(uint32_t offset, size_t width, uint64_t value);
  void write_status(uint8_t status);
  void reset_locked();

  std::shared_ptr<VirtioDevice> device_;
  const GuestRam& ram_;
  const uint32_t bar_gpa_;
  MsixTable msix_;  // its own lock; vector i signals lines[i]
  const uint16_t nvec_;
  std::string label_;
  TransportMetrics metrics_;

  std::mutex mu_;  // guards everything below except the atomics
  uint32_t device_feature_select_ = 0, driver_feature_select_ = 0;
  uint64_t driver_features_ = 0;
  uint8_t status_ = 0;
  uint16_t queue_select_ = 0;
  std::vector<QueueRegs> queues_;
  PciType0Config cfg_;  // IDs, BAR0, the capability chain (common .. MSI-X)
  std::atomic<uint16_t> config_vector_{kMsixNoVector};
  std::array<std::atomic<uint16_t>, kMaxVectors> queue_vector_;  // by queue
  std::atomic<uint8_t> isr_{0};
};

}  // namespace labyrinth::devices::virtio
