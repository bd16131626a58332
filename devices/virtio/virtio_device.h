// devices/virtio/virtio_device.h — a virtio device as its transport sees it.
//
// The transport (pci_transport.h) owns the register file: feature selection, device
// status, queue setup, MSI-X, ISR. A device implements only what is its own: its id,
// features, queues' count and maximum size, its config space and what happens when
// the driver starts it (activate) or resets it (reset) — Firecracker's VirtioDevice
// split. The transport signals the driver through a VirtioInterrupt it hands over at
// activation.
//
//   activate(features, queues, irq)  vCPU thread (the driver's DRIVER_OK write): the
//                                    queues are validated already; the device moves
//                                    them to its own thread
//   notify(q)                        the driver kicked queue q (any thread)
//   reset()                          vCPU thread (status 0): stop using the queues
//   needs_reset()                    any thread: the device hit an error only a reset
//                                    ends; the transport shows DEVICE_NEEDS_RESET
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "devices/virtio/split_queue.h"

namespace labyrinth::devices::virtio {

class VirtioInterrupt {
 public:
  virtual ~VirtioInterrupt() = default;
  // The used ring of queue q changed. Thread-safe, never blocks.
  virtual void signal_queue(uint16_t q) = 0;
  // The device config changed (link status). Thread-safe, never blocks.
  virtual void signal_config() = 0;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual std::string_view label() const = 0;
  virtual uint32_t device_id() const = 0;  // 1: net
  virtual uint64_t features() const = 0;   // offered, VIRTIO_F_VERSION_1 included
  virtual uint16_t num_queues() const = 0;
  virtual uint16_t max_queue_size() const = 0;  // <= SplitQueue::kMaxSize, a power of two
  // The device-specific config space (reads outside it: zero; writes: ignored or own).
  virtual void read_config(uint32_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint32_t offset, std::span<const uint8_t> data) = 0;
  virtual void activate(uint64_t features, std::vector<SplitQueue> queues,
                        VirtioInterrupt& irq) = 0;
  virtual void notify(uint16_t queue) = 0;
  virtual void reset() = 0;
  // True from the moment the device, activated, entered an error state it cannot leave
  // by itself (virtio 1.2, 2.1.2: a corrupt ring) until the driver resets it: the
  // transport then reads DEVICE_NEEDS_RESET in device_status. The device stops using
  // its queues and sends a configuration change notification (signal_config) when it
  // sets it. Lock-free; never true for an activation the driver has reset already.
  virtual bool needs_reset() const = 0;
};

}  // namespace labyrinth::devices::virtio
