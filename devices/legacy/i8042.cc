#include "devices/legacy/i8042.h"

#include "guest/abi/ports.h"

namespace labyrinth::devices {

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1) return;
  if (offset == LABYRINTH_PORT_I8042_CMD - kBase) data[0] = kStatusSystemFlag;
  // Data port and 0x61-0x63: 0 (no keyboard, nothing pending).
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) return;
  if (offset == LABYRINTH_PORT_I8042_CMD - kBase && data[0] == LABYRINTH_I8042_RESET) {
    control_.request_shutdown(0, "guest reset through the i8042");
  }
}

}  // namespace labyrinth::devices
