// devices/legacy/exit_device.h — ports a guest ends the VM through, with its status.
//
// Two contracts, two places (both on every VM, apart so that neither guest kind can
// mistake the other's port):
//   * Labyrinth's exit port (LABYRINTH_PORT_EXIT, 0x501, ExitContract::labyrinth): a guest
//     OUT (32-bit; narrower widths are accepted too) of V at offset 0 ends the VM with
//     status V & 0xFF. Our test guests use it.
//   * QEMU's isa-debug-exit as kvm-unit-tests run it (`-device isa-debug-exit,iobase=0xf4,
//     iosize=4`; LABYRINTH_PORT_DEBUG_EXIT, ExitContract::isa_debug_exit): an OUT of V of
//     any width at any of the 4 ports ends the VM with status ((V << 1) | 1) & 0xFF, so
//     a test's exit(0) is status 1 and no write can look like a clean 0.
// Reads return 0.
//
//   pio.insert(std::make_shared<ExitDevice>(vm, ExitContract::isa_debug_exit), 0xF4, 4);
#pragma once

#include <cstdint>

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

enum class ExitContract : uint8_t { labyrinth, isa_debug_exit };

class ExitDevice final : public BusDevice {
 public:
  explicit ExitDevice(VmControl& control, ExitContract contract = ExitContract::labyrinth)
      : control_(control), contract_(contract) {}
  std::string_view label() const override {
    return contract_ == ExitContract::labyrinth ? "exit" : "isa-debug-exit";
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
  ExitContract contract_;
};

}  // namespace labyrinth::devices
