// devices/legacy/i8042.h — the minimum of a PS/2 controller: its reset line, and the
// command interface Linux's i8042 driver probes.
//
// Covers ports 0x60-0x64. Writing LABYRINTH_I8042_RESET (0xFE) to the command port
// 0x64 resets the machine, which Labyrinth treats as a clean shutdown (status 0), as
// Firecracker does. Controller commands that answer through the output buffer (data
// port 0x60, "output buffer full" in the status) are answered at once: 0x20 read the
// configuration byte, 0xAA self test (0x55), 0xAB/0xA9 port tests (0x00); 0x60 takes
// the next data byte as the configuration byte. Port enable/disable commands are
// accepted. No keyboard or mouse is attached: bytes for them are dropped and no
// interrupt (IRQ 1/12) is raised. Port 0x61 is handled by KVM's in-kernel PIT.
//
// Thread-safety: mu_ guards the controller state (vCPU threads). Order:
// Bus::devices_mu_ -> I8042::mu_ (request_shutdown is called after mu_ is released).
#pragma once

#include <cstdint>
#include <mutex>

#include "devices/bus/bus.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class I8042 final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;             // LABYRINTH_PORT_I8042_DATA
  static constexpr uint64_t kLen = 5;                 // through LABYRINTH_PORT_I8042_CMD
  static constexpr uint8_t kStatusOutputFull = 0x01;  // a byte waits at 0x60
  static constexpr uint8_t kStatusSystemFlag = 0x04;  // "self-test passed"
  static constexpr uint8_t kStatusUnlocked = 0x10;    // keyboard not inhibited (no keylock)
  static constexpr uint8_t kCmdReadCtr = 0x20, kCmdWriteCtr = 0x60, kCmdSelfTest = 0xAA,
                           kCmdAuxTest = 0xA9, kCmdKbdTest = 0xAB;
  static constexpr uint8_t kInitialCtr = 0x47;  // kbd interrupt, system flag, translate

  explicit I8042(VmControl& control) : control_(control) {}
  std::string_view label() const override { return "i8042"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  VmControl& control_;
  std::mutex mu_;
  uint8_t ctr_ = kInitialCtr;
  uint8_t out_ = 0;
  bool out_full_ = false;
  bool ctr_write_pending_ = false;  // the last command was kCmdWriteCtr
};

}  // namespace labyrinth::devices
