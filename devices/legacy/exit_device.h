// devices/legacy/exit_device.h — the Labyrinth exit port (LABYRINTH_PORT_EXIT, 0x501).
//
// A guest OUT (32-bit; narrower widths are accepted too) of value V ends the VM and
// the VMM exits with status V & 0xFF. Reads return 0.
#pragma once

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class ExitDevice final : public BusDevice {
 public:
  explicit ExitDevice(VmControl& control) : control_(control) {}
  std::string_view label() const override { return "exit"; }
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
};

}  // namespace labyrinth::devices
