#include "devices/legacy/exit_device.h"

#include <algorithm>
#include <cstring>

namespace labyrinth::devices {

void ExitDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (contract_ == ExitContract::labyrinth) {
    if (offset != 0) return;
    control_.request_shutdown(data[0], "guest wrote the exit port");  // little endian: V & 0xFF
    return;
  }
  // isa-debug-exit: the value as written (little endian, up to 32 bits), at any offset.
  uint32_t v = 0;
  std::memcpy(&v, data.data(), std::min(data.size(), sizeof(v)));
  control_.request_shutdown(static_cast<int>(((v << 1) | 1) & 0xFF),
                            "guest wrote the isa-debug-exit port");
}

}  // namespace labyrinth::devices
