// vmm/config/nic_settings.h — the NICs as configured: what the parsers produce and
// vmm/net/ wires up. Plain data with no dependency on vmm/net/ (which includes this).
//
// One lnic, under "labyrinth": {"lnics": [...]}:
//   {"id": "lnic0", "guest_mac": "02:4c:42:00:00:01",
//    "backend": {"type": "pktgen", "rate_pps": 10000, "frame_size": 64, "burst": 1,
//                "duration_s": 0, "count": 0, "pattern": 165, "spin_us": 50}}
//   backend types: "loopback" | "pktgen" | "udp" {"local_port", "peer_port"}
//                  | "tap" {"host_dev_name"}   (Firecracker's name for the tap device)
// One virtio-net device, under "network-interfaces": [...] (Firecracker's keys):
//   {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "devices/lnic/backend/backend.h"
#include "devices/lnic/hostile.h"

namespace labyrinth::vmm {

struct LnicSettings {
  std::string id;
  std::array<uint8_t, 6> mac{};
  devices::lnic::BackendConfig backend;
  uint64_t test_inject_delay_ns = 0;  // "test_inject_delay_ns": validation of the measurement only
  // "test_hostile": ["bad_address", ...]: a guest driver's tests only (docs/lnic.md)
  std::vector<devices::lnic::HostileKind> test_hostile;
};

// One entry of "network-interfaces": a virtio-net device on PCI whose backend is the TAP
// device host_dev_name (opened, or created if missing).
struct NetworkInterface {
  std::string iface_id;
  std::string host_dev_name;
  std::array<uint8_t, 6> guest_mac{};  // default 06:00:ac:10:00:<index + 2>
};
inline constexpr size_t kMaxNetworkInterfaces = 8;

}  // namespace labyrinth::vmm
