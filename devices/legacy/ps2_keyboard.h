// devices/legacy/ps2_keyboard.h — the AT keyboard behind the i8042's keyboard port: the
// bytes it answers to each byte the guest sends it through the controller's data port.
//
// A keyboard that answers is what lets Linux's atkbd finish its probe at once: atkbd
// sends GET ID (0xF2) and, when that fails, SET LEDS (0xED); libps2 waits up to 200 ms
// for the ACK to each byte, so a keyboard that never answers costs the boot ~0.4-0.5 s
// and leaves no keyboard device (Ctrl-Alt-Del then needs i8042.dumbkbd). Answering "no
// device" instead (0xFE with the controller's timeout bit) would end the probe as fast
// but also leave no keyboard. This one answers as an MF2 keyboard does, in scan code
// set 2 only:
//   0xED set LEDs, 0xF3 set typematic rate: ACK (0xFA), then ACK for the parameter byte
//   0xEE echo: 0xEE
//   0xF0 scan code set: ACK; parameter 0 (query): ACK and the set, 2; parameter 2: ACK;
//        any other set: 0xFE (not supported), so the guest stays in set 2
//   0xF2 identify: ACK, 0xAB, 0x83 (0x41 while the controller translates, as a PC's
//        controller hands the second byte on)
//   0xF4 enable, 0xF5 disable, 0xF6 defaults: ACK (scanning is not modelled: the only
//        keys are the API's Ctrl-Alt-Del, which the guest asked for)
//   0xFE resend: the last byte sent again
//   0xFF reset: ACK, 0xAA (self test passed)
//   anything else: 0xFE, a real keyboard's "resend" for a byte it did not understand.
// A byte of 0xED or above that arrives where a parameter is expected is a new command,
// as on a real keyboard. Every reply is at most three bytes.
//
//   Ps2Keyboard kbd;
//   auto r = kbd.receive(0xF2, /*translate=*/true);  // r.view(): FA AB 41
//
// Not thread-safe: the I8042 calls it under its own mutex.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace labyrinth::devices {

class Ps2Keyboard {
 public:
  static constexpr uint8_t kAck = 0xFA, kResend = 0xFE, kSelfTestPassed = 0xAA, kEcho = 0xEE;
  static constexpr uint8_t kId0 = 0xAB, kId1 = 0x83, kId1Translated = 0x41;
  static constexpr uint8_t kScanSet = 2, kScanSetTranslated = 0x41;
  static constexpr uint8_t kCmdSetLeds = 0xED, kCmdEcho = 0xEE, kCmdScanSet = 0xF0,
                           kCmdGetId = 0xF2, kCmdSetRate = 0xF3, kCmdEnable = 0xF4,
                           kCmdDisable = 0xF5, kCmdDefaults = 0xF6, kCmdResend = 0xFE,
                           kCmdReset = 0xFF;

  struct Reply {
    std::array<uint8_t, 3> bytes{};
    uint8_t len = 0;
    std::span<const uint8_t> view() const { return {bytes.data(), len}; }
  };

  // One byte from the guest; translate: the controller's configuration byte asks for
  // translation (bit 6), which changes the ID's second byte and the set number.
  Reply receive(uint8_t byte, bool translate);

 private:
  Reply command(uint8_t cmd, bool translate);
  Reply parameter(uint8_t cmd, uint8_t param, bool translate);

  uint8_t waiting_for_ = 0;         // the command whose parameter byte comes next; 0: none
  uint8_t last_ = kSelfTestPassed;  // the last byte sent, for resend
};

}  // namespace labyrinth::devices
