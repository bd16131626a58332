// devices/legacy/i8042.h — the minimum of a PS/2 controller: its reset line.
//
// Covers ports 0x60-0x64. Writing LABYRINTH_I8042_RESET (0xFE) to the command port
// 0x64 resets the machine, which Labyrinth treats as a clean shutdown (status 0), as
// Firecracker does. Reading 0x64 returns a status with both buffers empty; reading
// 0x60 returns 0. Port 0x61 is handled by KVM's in-kernel PIT when present.
#pragma once

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class I8042 final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;             // LABYRINTH_PORT_I8042_DATA
  static constexpr uint64_t kLen = 5;                 // through LABYRINTH_PORT_I8042_CMD
  static constexpr uint8_t kStatusSystemFlag = 0x04;  // "self-test passed"

  explicit I8042(VmControl& control) : control_(control) {}
  std::string_view label() const override { return "i8042"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
};

}  // namespace labyrinth::devices
