// vmm/net/lnic_settings.h — one lnic as configured under "labyrinth": {"lnics": [...]}.
//
//   {"id": "lnic0", "guest_mac": "02:4c:42:00:00:01",
//    "backend": {"type": "pktgen", "rate_pps": 10000, "frame_size": 64, "burst": 1,
//                "duration_s": 0, "count": 0, "pattern": 165, "spin_us": 50}}
//   backend types: "loopback" | "pktgen" | "udp" {"local_port", "peer_port"}
//                  | "tap" {"host_dev_name"}   (Firecracker's name for the tap device)
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "devices/lnic/backend/backend.h"

namespace labyrinth::vmm {

struct LnicSettings {
  std::string id;
  std::array<uint8_t, 6> mac{};
  devices::lnic::BackendConfig backend;
  uint64_t test_inject_delay_ns = 0;  // "test_inject_delay_ns": validation of the measurement only
};

}  // namespace labyrinth::vmm
