// devices/legacy/i8042.h — the minimum of a PS/2 controller: its reset line, and the
// command interface Linux's i8042 driver probes, answered so that the probe never has
// to wait for a timeout.
//
// Covers ports 0x60-0x64. Writing LABYRINTH_I8042_RESET (0xFE) to the command port
// 0x64 resets the machine, which Labyrinth treats as a clean shutdown (status 0), as
// Firecracker does. Controller commands that answer through the output buffer (data
// port 0x60, "output buffer full" in the status) are answered at once:
//   0x20        read the configuration byte; 0x60 takes the next data byte as it
//   0xA7/0xA8   disable/enable the AUX port: set/clear "AUX clock disabled" (bit 5)
//   0xAD/0xAE   disable/enable the keyboard port: set/clear "keyboard disabled" (bit 4)
//   0xAA        self test: 0x55
//   0xAB        keyboard interface test: 0x00 (passed)
//   0xA9        AUX interface test: 0x01 (clock line stuck low)
//   0xD3        write the AUX output buffer: the next data byte comes back, but as a
//               keyboard byte (status bit 5, "AUX data", stays clear)
// The controller has no AUX (mouse) port, and says so the way Linux's i8042_check_aux
// recognises without a timeout: its loopback through 0xD3 fails at once (the byte is
// not AUX data) and the interface test reports a stuck line, so Linux gives up on the
// AUX port before toggling it or waiting for IRQ 12. A controller that ignored 0xD3
// would cost the guest a 500 ms wait for the output buffer, and one whose AUX test
// passed would send it through the enable/disable checks and the IRQ 12 test.
// The keyboard (ps2_keyboard.h) answers the commands the guest sends it through the data
// port as an AT keyboard does, so Linux's atkbd probe (GET ID, then the LEDs, the rate,
// enable) ends at once with a keyboard device and no i8042.* option is needed. Its answer
// bytes, like keys, come through the output buffer one at a time, IRQ 1 raised for each
// (when the configuration byte enables the keyboard interrupt, bit 0) as it reaches the
// buffer — the next one when the guest has read the last. The only keys it ever presses
// are Ctrl-Alt-Del (send_ctrl_alt_del, the API's SendCtrlAltDel): the make and then the
// break codes of Left Ctrl, Left Alt and Delete. The codes are scan code set 1 when the
// configuration byte asks for translation (bit 6, as at reset: what a PC's controller
// hands the CPU) and set 2 otherwise. A Linux guest's keyboard driver takes Ctrl-Alt-Del
// to its reboot (kernel.ctrl-alt-del=1) or to a SIGINT for init; with reboot=k the reboot
// is the reset command above. A controller command's answer goes to the output buffer
// ahead of any keyboard byte waiting there, which is put back to come after it. At most
// kKbdQueue keyboard bytes wait; a reply that does not fit is dropped (a guest that
// never reads while it writes commands loses answers, never memory). No IRQ 12 (no AUX
// port). Port 0x61 is handled by KVM's in-kernel PIT.
//
// Thread-safety: mu_ guards the controller state (vCPU threads). Order:
// Bus::devices_mu_ -> I8042::mu_ (request_shutdown is called after mu_ is released).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "devices/bus/bus.h"
#include "devices/irq_line.h"
#include "devices/legacy/ps2_keyboard.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class I8042 final : public BusDevice {
 public:
  static constexpr uint64_t kBase = 0x60;             // LABYRINTH_PORT_I8042_DATA
  static constexpr uint64_t kLen = 5;                 // through LABYRINTH_PORT_I8042_CMD
  static constexpr uint8_t kStatusOutputFull = 0x01;  // a byte waits at 0x60
  static constexpr uint8_t kStatusSystemFlag = 0x04;  // "self-test passed"
  static constexpr uint8_t kStatusUnlocked = 0x10;    // keyboard not inhibited (no keylock)
  static constexpr uint8_t kStatusAuxData = 0x20;     // the waiting byte is from the AUX port
  static constexpr uint8_t kCmdReadCtr = 0x20, kCmdWriteCtr = 0x60, kCmdAuxDisable = 0xA7,
                           kCmdAuxEnable = 0xA8, kCmdAuxTest = 0xA9, kCmdSelfTest = 0xAA,
                           kCmdKbdTest = 0xAB, kCmdKbdDisable = 0xAD, kCmdKbdEnable = 0xAE,
                           kCmdWriteAuxOut = 0xD3;
  static constexpr uint8_t kCtrKbdInterrupt = 0x01, kCtrKbdDisabled = 0x10, kCtrAuxDisabled = 0x20,
                           kCtrTranslate = 0x40;
  static constexpr uint8_t kInitialCtr = 0x47;  // kbd interrupt, system flag, translate
  static constexpr uint8_t kSelfTestPassed = 0x55, kKbdTestPassed = 0x00;
  static constexpr uint8_t kAuxTestClockStuckLow = 0x01;

  // Ctrl-Alt-Del, pressed then released: scan code set 1 (translated) and set 2.
  static constexpr std::array<uint8_t, 8> kCtrlAltDelSet1 = {0x1D, 0x38, 0xE0, 0x53,
                                                             0xE0, 0xD3, 0xB8, 0x9D};
  static constexpr std::array<uint8_t, 11> kCtrlAltDelSet2 = {0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0,
                                                              0x71, 0xF0, 0x11, 0xF0, 0x14};
  static constexpr size_t kKbdQueue = 16;  // keyboard bytes held, the output buffer's included

  // kbd_irq: IRQ 1 (null: no keyboard interrupt, as in the unit tests of the controller).
  explicit I8042(VmControl& control, IrqLine* kbd_irq = nullptr)
      : control_(control), kbd_irq_(kbd_irq) {}
  std::string_view label() const override { return "i8042"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;
  // Queues Ctrl-Alt-Del for the guest (any thread). False, and nothing queued, if the
  // keys of an earlier one are still waiting to be read.
  bool send_ctrl_alt_del();

 private:
  // What the next byte written to the data port is for.
  enum class DataFor : uint8_t { kKeyboard, kCtr, kAuxOut };

  VmControl& control_;
  std::mutex mu_;
  uint8_t ctr_ = kInitialCtr;
  uint8_t out_ = 0;
  bool out_full_ = false;
  bool out_from_kbd_ = false;              // out_ is a keyboard byte (counted in kKbdQueue)
  DataFor data_for_ = DataFor::kKeyboard;  // set by the last command
  IrqLine* kbd_irq_;
  std::array<uint8_t, kKbdQueue> kbd_{};  // keyboard bytes behind out_, kbd_head_ first
  size_t kbd_head_ = 0, kbd_len_ = 0;
  Ps2Keyboard keyboard_;

  // mu_ held: keyboard bytes behind the output buffer; false, and none queued, if they
  // do not all fit.
  bool queue_keyboard_locked(std::span<const uint8_t> bytes);
  // mu_ held: a controller command's answer into the output buffer, ahead of a keyboard
  // byte that was waiting there.
  void answer_locked(uint8_t v);

  // mu_ held: the next keyboard byte into the empty output buffer, and its IRQ 1.
  void feed_keyboard_locked();
};

}  // namespace labyrinth::devices
