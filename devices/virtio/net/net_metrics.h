// devices/virtio/net/net_metrics.h — virtio-net counters and its RX latency histogram.
//
// Counters as the lnic's (devices/lnic/lnic_metrics.h): data-path ones written by the
// device event loop only (relaxed load + store), readable from any thread. host_rx is
// the same span as the lnic's, in the same histogram type (alloc::Histogram, TSC
// ticks): frame ready (read from the TAP) -> used ring written and the MSI irqfd
// signalled. Event loop only: read it once the loop has stopped.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "allocator/histogram.h"
#include "devices/virtio/split_queue.h"

namespace labyrinth::devices::virtio {

struct NetCounter {
  std::atomic<uint64_t> v{0};
  void inc(uint64_t n = 1) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct NetMetrics {
  NetCounter rx_frames, rx_bytes;
  NetCounter rx_drop_too_small;  // the guest's buffer could not hold the frame (frame dropped)
  NetCounter rx_drop_oversize;   // the TAP gave more than a frame can be (no offloads)
  NetCounter rx_waits;           // the RX queue was empty: the TAP is not read until a kick
  NetCounter tx_frames, tx_bytes;
  NetCounter tx_drop_backend;    // the TAP refused the frame (interface down, queue full)
  NetCounter tx_drop_malformed;  // shorter than the virtio-net header, or too long
  NetCounter irqs;               // queue interrupts signalled
  NetCounter kicks_rx, kicks_tx;
  NetCounter needs_reset;  // a corrupt ring stopped the device until the driver's reset
  // Malformed chains by reason (index: QueueError value), both queues.
  std::array<NetCounter, 16> bad_chains;
  uint64_t bad_chains_total() const {
    uint64_t n = 0;
    for (const auto& c : bad_chains) n += c.get();
    return n;
  }
};

struct NetLatency {
  alloc::Histogram host_rx;  // frame ready -> used ring written and irqfd signalled (ticks)
};

}  // namespace labyrinth::devices::virtio
