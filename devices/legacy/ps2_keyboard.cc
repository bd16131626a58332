#include "devices/legacy/ps2_keyboard.h"

#include <initializer_list>

namespace labyrinth::devices {

namespace {

Ps2Keyboard::Reply reply(std::initializer_list<uint8_t> bytes) {
  Ps2Keyboard::Reply r;
  for (const uint8_t b : bytes) r.bytes[r.len++] = b;  // callers pass at most three
  return r;
}

}  // namespace

Ps2Keyboard::Reply Ps2Keyboard::receive(uint8_t byte, bool translate) {
  Reply r;
  if (waiting_for_ != 0 && byte < kCmdSetLeds) {
    r = parameter(waiting_for_, byte, translate);
    waiting_for_ = 0;
  } else {
    waiting_for_ = 0;  // a command byte where a parameter was due replaces that command
    r = command(byte, translate);
  }
  if (r.len > 0) last_ = r.bytes[r.len - 1];
  return r;
}

// A command byte: its whole answer, or its ACK while it waits for a parameter.
Ps2Keyboard::Reply Ps2Keyboard::command(uint8_t cmd, bool translate) {
  switch (cmd) {
    case kCmdSetLeds:
    case kCmdSetRate:
    case kCmdScanSet:
      waiting_for_ = cmd;
      return reply({kAck});
    case kCmdEcho:
      return reply({kEcho});
    case kCmdGetId:
      return reply({kAck, kId0, translate ? kId1Translated : kId1});
    case kCmdEnable:
    case kCmdDisable:
    case kCmdDefaults:
      return reply({kAck});
    case kCmdResend:
      return reply({last_});
    case kCmdReset:
      return reply({kAck, kSelfTestPassed});
    default:  // not a command this keyboard knows
      return reply({kResend});
  }
}

// The parameter byte of SET LEDS, SET RATE or SCAN SET. The LEDs and the rate have no
// effect on anything the guest can observe; only set 2 exists.
Ps2Keyboard::Reply Ps2Keyboard::parameter(uint8_t cmd, uint8_t param, bool translate) {
  if (cmd != kCmdScanSet) return reply({kAck});
  if (param == 0) return reply({kAck, translate ? kScanSetTranslated : kScanSet});
  if (param == kScanSet) return reply({kAck});
  return reply({kResend});
}

}  // namespace labyrinth::devices
