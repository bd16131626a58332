// devices/virtio/net/net_metrics.h — virtio-net counters and its RX latency histogram.
//
// Counters as the lnic's (devices/lnic/lnic_metrics.h): data-path ones written by the
// device event loop only (relaxed load + store), readable from any thread. host_rx is
// the same span as the lnic's, in the same histogram type (measure::Histogram, TSC
// ticks): frame ready (read from the TAP) -> used ring written and the MSI irqfd
// signalled. Event loop only: read it once the loop has stopped.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "allocator/measure/counter.h"
#include "allocator/measure/histogram.h"
#include "devices/virtio/split_queue.h"

namespace labyrinth::devices::virtio {

struct NetMetrics {
  measure::Counter rx_frames, rx_bytes;
  measure::Counter
      rx_drop_too_small;              // the guest's buffer could not hold the frame (frame dropped)
  measure::Counter rx_drop_oversize;  // the TAP gave more than a frame can be (no offloads)
  measure::Counter rx_waits;          // the RX queue was empty: the TAP is not read until a kick
  measure::Counter tx_frames, tx_bytes;
  measure::Counter tx_drop_backend;    // the TAP refused the frame (interface down, queue full)
  measure::Counter tx_drop_malformed;  // shorter than the virtio-net header, or too long
  measure::Counter irqs;               // queue interrupts signalled
  measure::Counter kicks_rx, kicks_tx;
  measure::Counter needs_reset;  // a corrupt ring stopped the device until the driver's reset
  // Malformed chains by reason (index: QueueError value), both queues.
  std::array<measure::Counter, 16> bad_chains;
  uint64_t bad_chains_total() const {
    uint64_t n = 0;
    for (const auto& c : bad_chains) n += c.get();
    return n;
  }
};

struct NetLatency {
  measure::Histogram host_rx;  // frame ready -> used ring written and irqfd signalled (ticks)
};

}  // namespace labyrinth::devices::virtio
