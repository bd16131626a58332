#include "devices/legacy/i8042.h"

#include "guest/abi/ports.h"

namespace labyrinth::devices {

namespace {
constexpr uint64_t kData = LABYRINTH_PORT_I8042_DATA - I8042::kBase;
constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase;
}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1) return;
  std::lock_guard lock(mu_);
  if (offset == kCmd) {
    // Every answer is keyboard-side data (no AUX port), so "AUX data" never shows.
    data[0] = kStatusSystemFlag | kStatusUnlocked | (out_full_ ? kStatusOutputFull : 0);
  } else if (offset == kData) {
    data[0] = out_;
    out_full_ = false;
    out_from_kbd_ = false;
    feed_keyboard_locked();  // the next key, if one waits
  }
  // 0x61-0x63: 0.
}

bool I8042::send_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  const bool set1 = (ctr_ & kCtrTranslate) != 0;
  return queue_keyboard_locked(set1 ? std::span<const uint8_t>(kCtrlAltDelSet1)
                                    : std::span<const uint8_t>(kCtrlAltDelSet2));
}

// All or nothing, so a key sequence or a keyboard answer never arrives in part. The
// byte in the output buffer counts against the room when it is a keyboard byte.
bool I8042::queue_keyboard_locked(std::span<const uint8_t> bytes) {
  const size_t held = kbd_len_ + (out_full_ && out_from_kbd_ ? 1 : 0);
  if (held + bytes.size() > kbd_.size()) return false;
  for (const uint8_t b : bytes) kbd_[(kbd_head_ + kbd_len_++) % kbd_.size()] = b;
  feed_keyboard_locked();
  return true;
}

// A waiting answer to a controller command keeps the buffer: the key follows it, as the
// guest reads the answer.
void I8042::feed_keyboard_locked() {
  if (out_full_ || kbd_len_ == 0) return;
  out_ = kbd_[kbd_head_];
  kbd_head_ = (kbd_head_ + 1) % kbd_.size();
  --kbd_len_;
  out_full_ = true;
  out_from_kbd_ = true;
  // An eventfd write: non-blocking, takes no lock of the VM's.
  if (kbd_irq_ != nullptr && (ctr_ & kCtrKbdInterrupt) != 0) kbd_irq_->trigger();
}

// The guest polls for a controller command's answer right after the command, so it goes
// first; a keyboard byte it displaces goes back to the head of the queue (its room was
// already counted) and is delivered again, with its IRQ 1, once the answer is read.
void I8042::answer_locked(uint8_t v) {
  if (out_full_ && out_from_kbd_) {
    kbd_head_ = (kbd_head_ + kbd_.size() - 1) % kbd_.size();
    kbd_[kbd_head_] = out_;
    ++kbd_len_;
  }
  out_ = v;
  out_full_ = true;
  out_from_kbd_ = false;
}

// A command byte at 0x64, or the data byte at 0x60 that the last command asked for.
// The reset command is acted on after mu_ is dropped, so no VM lock is taken under
// the device's.
void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) return;
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    auto answer = [&](uint8_t v) { answer_locked(v); };
    if (offset == kCmd) {
      // A new command cancels a data byte the previous one was waiting for.
      data_for_ = DataFor::kKeyboard;
      switch (data[0]) {
        case kCmdReadCtr:
          answer(ctr_);
          break;
        case kCmdWriteCtr:
          data_for_ = DataFor::kCtr;
          break;
        // The port enables and disables are only the configuration byte's bits here:
        // Linux checks them by reading the byte back after each command.
        case kCmdAuxDisable:
          ctr_ |= kCtrAuxDisabled;
          break;
        case kCmdAuxEnable:
          ctr_ &= static_cast<uint8_t>(~kCtrAuxDisabled);
          break;
        case kCmdKbdDisable:
          ctr_ |= kCtrKbdDisabled;
          break;
        case kCmdKbdEnable:
          ctr_ &= static_cast<uint8_t>(~kCtrKbdDisabled);
          break;
        case kCmdSelfTest:
          answer(kSelfTestPassed);
          break;
        case kCmdKbdTest:
          answer(kKbdTestPassed);
          break;
        case kCmdAuxTest:  // no AUX port: a failure, so the guest stops probing it
          answer(kAuxTestClockStuckLow);
          break;
        case kCmdWriteAuxOut:
          data_for_ = DataFor::kAuxOut;
          break;
        case LABYRINTH_I8042_RESET:
          reset = true;
          break;
        default:  // the rest: accepted, no answer
          break;
      }
    } else if (offset == kData) {
      switch (data_for_) {
        case DataFor::kCtr:
          ctr_ = data[0];
          break;
        case DataFor::kAuxOut:
          // The loopback answers at once, but as keyboard data (kStatusAuxData clear):
          // there is no AUX channel for the byte to come back through.
          answer(data[0]);
          break;
        case DataFor::kKeyboard: {
          // Dropped if the guest left too many answers unread (queue_keyboard_locked).
          const Ps2Keyboard::Reply r = keyboard_.receive(data[0], (ctr_ & kCtrTranslate) != 0);
          (void)queue_keyboard_locked(r.view());
          break;
        }
      }
      data_for_ = DataFor::kKeyboard;
    }
  }
  if (reset) control_.request_shutdown(0, "guest reset through the i8042");
}

}  // namespace labyrinth::devices
