#include "devices/legacy/exit_device.h"

namespace labyrinth::devices {

void ExitDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  control_.request_shutdown(data[0], "guest wrote the exit port");  // little endian: V & 0xFF
}

}  // namespace labyrinth::devices
