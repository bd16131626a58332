// tests/devices/virtio/driver.h — a minimal virtio-pci driver for device tests: config
// space and BAR accesses straight into a VirtioPciTransport, queues in a FakeRam.
#pragma once

#include <atomic>
#include <cstring>
#include <vector>

#include "devices/msi_line.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/virtio_abi.h"
#include "tests/support/device_fakes.h"

namespace labyrinth::devices::test {

class Driver {
 public:
  explicit Driver(virtio::VirtioPciTransport& t) : t_(t) {}
  template <class T>
  T rd(uint64_t off) {
    std::array<uint8_t, sizeof(T)> b{};
    t_.read(off, b);
    T v;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
  }
  template <class T>
  void wr(uint64_t off, T v) {
    std::array<uint8_t, sizeof(T)> b{};
    std::memcpy(b.data(), &v, sizeof v);
    t_.write(off, b);
  }
  void status(uint8_t s) { wr<uint8_t>(virtio::common::kDeviceStatus, s); }
  uint8_t status() { return rd<uint8_t>(virtio::common::kDeviceStatus); }
  void features(uint64_t f) {
    using namespace virtio::common;
    wr<uint32_t>(kDriverFeatureSelect, 0);
    wr<uint32_t>(kDriverFeature, static_cast<uint32_t>(f));
    wr<uint32_t>(kDriverFeatureSelect, 1);
    wr<uint32_t>(kDriverFeature, static_cast<uint32_t>(f >> 32));
  }
  uint64_t device_features() {
    using namespace virtio::common;
    wr<uint32_t>(kDeviceFeatureSelect, 0);
    uint64_t f = rd<uint32_t>(kDeviceFeature);
    wr<uint32_t>(kDeviceFeatureSelect, 1);
    return f | uint64_t{rd<uint32_t>(kDeviceFeature)} << 32;
  }
  // Queue q: size, rings, MSI-X vector, enable. Returns queue_enable as read back.
  bool setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used,
                   uint16_t vector) {
    using namespace virtio::common;
    wr<uint16_t>(kQueueSelect, q);
    wr<uint16_t>(kQueueSize, size);
    wr<uint32_t>(kQueueDesc, static_cast<uint32_t>(desc));
    wr<uint32_t>(kQueueDesc + 4, static_cast<uint32_t>(desc >> 32));
    wr<uint32_t>(kQueueDriver, static_cast<uint32_t>(avail));
    wr<uint32_t>(kQueueDriver + 4, static_cast<uint32_t>(avail >> 32));
    wr<uint32_t>(kQueueDevice, static_cast<uint32_t>(used));
    wr<uint32_t>(kQueueDevice + 4, static_cast<uint32_t>(used >> 32));
    wr<uint16_t>(kQueueMsixVector, vector);
    wr<uint16_t>(kQueueEnable, 1);
    return rd<uint16_t>(kQueueEnable) == 1;
  }
  void msix_entry(uint16_t v, uint64_t addr, uint32_t data, bool masked) {
    const uint64_t base = virtio::VirtioPciTransport::kMsixTableOff + 16u * v;
    wr<uint32_t>(base, static_cast<uint32_t>(addr));
    wr<uint32_t>(base + 4, static_cast<uint32_t>(addr >> 32));
    wr<uint32_t>(base + 8, data);
    wr<uint32_t>(base + 12, masked ? 1 : 0);
  }
  // PCI config space: MSI-X enable (and function mask).
  void msix_enable(uint8_t cap, bool enable, bool fmask = false) {
    t_.write_config(cap, (enable ? 0x80000000u : 0) | (fmask ? 0x40000000u : 0), 0xFFFF0000u);
  }
  // Walks the capability list: offsets of the vendor caps by cfg_type, and MSI-X.
  std::vector<std::pair<uint8_t, uint8_t>> caps() {  // (id or vendor cfg_type, offset)
    std::vector<std::pair<uint8_t, uint8_t>> out;
    uint8_t p = static_cast<uint8_t>(t_.read_config(0x34) & 0xFF);
    for (int n = 0; p != 0 && n < 48; ++n) {
      const uint32_t d = t_.read_config(p);
      const uint8_t id = d & 0xFF;
      out.emplace_back(id == virtio::kPciCapVendor ? static_cast<uint8_t>(d >> 24) : id, p);
      p = static_cast<uint8_t>((d >> 8) & 0xFF);
    }
    return out;
  }

 private:
  virtio::VirtioPciTransport& t_;
};

}  // namespace labyrinth::devices::test
