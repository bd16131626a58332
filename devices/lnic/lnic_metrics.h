// devices/lnic/lnic_metrics.h — per-NIC counters and latency histograms.
//
// Modelled on Firecracker's net metrics: every frame in and out, every drop by reason,
// every ownership violation by the guest. Data-path counters are written by the
// device event loop only (relaxed load + store, no locked instruction); register-side
// counters by vCPU threads (relaxed fetch_add). Readers on other threads see each
// counter atomically. The histograms are event-loop only: read them once it stopped.
#pragma once

#include <atomic>
#include <cstdint>

#include "allocator/measure/counter.h"
#include "allocator/measure/histogram.h"

namespace labyrinth::devices::lnic {

using measure::Counter;

struct LnicMetrics {
  // Receive path (event loop).
  Counter rx_frames, rx_bytes;
  Counter rx_drop_no_page;      // pool had no page for the interrupt path
  Counter rx_drop_ring_full;    // guest has not consumed completions
  Counter rx_drop_not_running;  // NIC not enabled, reset or RX-stopped
  Counter rx_drop_oversize;     // frame longer than a page (or empty)
  Counter rx_drop_bad_ring;     // RX ring's consumer index corrupt
  Counter irqs;                 // interrupts raised
  Counter alloc_net_zero;       // alloc samples no longer than the empty rdtsc pair they
                                // are net of (Lnic::alloc_timer_ticks): recorded as 0
  Counter rx_delay_injected;    // test only: frames the test_inject_delay_ns delay was spun on
  Counter hostile_written;      // test only: hostile RX entries (or RX prod) written (test_hostile)
  Counter rx_drop_hostile;      // test only: frames dropped after test_hostile's impossible RX
                                // prod, until the guest reset the device
  // Return path (event loop).
  Counter ret_doorbells, pages_returned;
  // LNIC_F_RET_EVENT: pages taken back from the RETURN ring without a doorbell (after an
  // RX batch, or when the pool was dry), and the times ret_event asked for the very next
  // return (an RX allocation had failed, or RX stopped).
  Counter pages_returned_unrung, ret_event_now;
  Counter guest_stamp_early;  // t_guest_irq before the frame was ready: the handler was
                              // entered before this completion was posted (no sample)
  // Transmit path (event loop).
  Counter tx_doorbells, tx_frames, tx_bytes, tx_drop_backend;
  Counter tx_irqs;  // TX vector signals (descriptors consumed, TX ring without NO_IRQ)
  // Ownership and protocol violations by the guest (event loop).
  Counter viol_bad_address;  // returned address misaligned or outside the pool window
  Counter viol_not_owner;    // returned a page this NIC has not given the guest
  Counter viol_double_free;  // returned the same delivery twice
  Counter viol_stale;        // named another delivery (seq) of a page the guest holds
  Counter viol_bad_index;    // ring index beyond the ring's size
  Counter viol_bad_tx;       // TX descriptor with a bad length or buffer
  // Register side (vCPU threads).
  Counter mmio_bad_access;  // undefined offset, width or read-only write
  Counter config_errors;    // ENABLE rejected a ring or MSI setting
  Counter enables, resets;
  Counter ignored_controls;  // ENABLE while STOPPING, RX_STOP while not running
  Counter msix_bad_access;   // BAR0 outside the register file, table and PBA, or a bad width
  Counter msix_rejects;      // an MSI-X entry unmasked with an unusable message
  Counter rx_stops;
  // Latency floor (event loop).
  Counter floor_sent;
  Counter floor_missed;  // not sent: the guest had not answered the previous one yet
  Counter floor_early;   // answered, but the guest stamp maps to before the send: the
                         // guest TSC offset moved during the run (no sample)

  uint64_t violations() const {
    return viol_bad_address.get() + viol_not_owner.get() + viol_double_free.get() +
           viol_stale.get() + viol_bad_index.get() + viol_bad_tx.get();
  }
  uint64_t rx_drops() const {
    return rx_drop_no_page.get() + rx_drop_ring_full.get() + rx_drop_not_running.get() +
           rx_drop_oversize.get() + rx_drop_bad_ring.get() + rx_drop_hostile.get();
  }
};

// Latency histograms, in TSC ticks. Event loop only.
struct LnicLatency {
  measure::Histogram alloc;    // the alloc_page(atomic|exclusive) call itself
  measure::Histogram host_rx;  // frame ready -> completion posted and interrupt signalled
  measure::Histogram guest;    // frame ready -> guest interrupt handler entry
  measure::Histogram floor;    // irqfd signalled -> guest handler entry, no device work
};

}  // namespace labyrinth::devices::lnic
