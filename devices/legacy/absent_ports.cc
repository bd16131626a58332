#include "devices/legacy/absent_ports.h"

#include <algorithm>

namespace labyrinth::devices {

void AbsentPorts::read(uint64_t /*offset*/, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0xFF});  // a floating ISA bus
  accesses_->fetch_add(1, std::memory_order_relaxed);
}

void AbsentPorts::write(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {
  accesses_->fetch_add(1, std::memory_order_relaxed);
}

}  // namespace labyrinth::devices
