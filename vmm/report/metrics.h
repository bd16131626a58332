// vmm/report/metrics.h — the metrics JSON (`labyrinth run --metrics`, `latency --json`).
//
//   boost::json::object m = metrics_json(pool->stats(), lnics->readings(), nets->readings());
//   if (!write_json(path, m)) ...;            // one line of JSON and a newline
//
// Firecracker-style: a device keeps its counters (devices/lnic/lnic_metrics.h,
// devices/virtio/net/net_metrics.h), the wiring in vmm/net/ hands them over as a
// reading, and only this file decides what the JSON calls them. A reading points at the
// device's counters and histograms: take it once the event loop has stopped (the
// histograms are the loop's alone while it runs).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "allocator/page_pool.h"
#include "devices/lnic/backend/backend.h"
#include "devices/lnic/lnic_metrics.h"
#include "devices/virtio/net/net_metrics.h"
#include "devices/virtio/pci_transport.h"
#include "vmm/report/latency_report.h"

namespace labyrinth::vmm {

// What an lnic's backend is, in the words a report uses (its title, the floor rate).
struct LnicBackendSummary {
  std::string name;         // the backend's own name: "pktgen", "loopback", "udp", "tap"
  bool pktgen = false;      // a packet generator: rate_pps and frame_size are set
  double rate_pps = 0;      // frames per second
  uint32_t frame_size = 0;  // bytes
};

// One lnic, as its reports read it.
struct LnicReading {
  std::string id;
  LnicBackendSummary backend;
  devices::lnic::BackendStats backend_stats;
  const devices::lnic::LnicMetrics* metrics = nullptr;  // never null in a reading
  const devices::lnic::LnicLatency* latency = nullptr;  // never null in a reading
  uint64_t alloc_timer_ticks = 0;                       // Lnic::alloc_timer_ticks()
  uint64_t pages_with_guest = 0;
};

// One virtio-net interface ("network-interfaces"), as its reports read it.
struct VirtioNetReading {
  std::string id;
  std::string tap_name;
  const devices::virtio::NetMetrics* metrics = nullptr;          // never null in a reading
  const devices::virtio::NetLatency* latency = nullptr;          // never null in a reading
  const devices::virtio::TransportMetrics* transport = nullptr;  // never null in a reading
};

// The interface's host_rx span under `title`: the JSON's "latency" and the --stats table.
LatencyReport virtio_net_host_rx(const VirtioNetReading& net, std::string title);

boost::json::object pool_metrics_json(const alloc::PoolStats& p);
boost::json::object lnic_metrics_json(const LnicReading& nic);
boost::json::object virtio_net_metrics_json(const VirtioNetReading& net);
// {"pool": ..., "lnics": [...], "virtio_net": [...]}
boost::json::object metrics_json(const alloc::PoolStats& pool, std::span<const LnicReading> lnics,
                                 std::span<const VirtioNetReading> nets);

// Writes `j` and a newline to `path`; false if the file could not be written.
bool write_json(const std::string& path, const boost::json::object& j);

}  // namespace labyrinth::vmm
