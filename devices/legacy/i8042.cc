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
    feed_keyboard_locked();  // the next key, if one waits
  }
  // 0x61-0x63: 0.
}

bool I8042::send_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  const bool set1 = (ctr_ & kCtrTranslate) != 0;
  const std::span<const uint8_t> keys =
      set1 ? std::span<const uint8_t>(kCtrlAltDelSet1) : std::span<const uint8_t>(kCtrlAltDelSet2);
  if (kbd_len_ + keys.size() > kbd_.size()) return false;
  for (const uint8_t k : keys) kbd_[(kbd_head_ + kbd_len_++) % kbd_.size()] = k;
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
  // An eventfd write: non-blocking, takes no lock of the VM's.
  if (kbd_irq_ != nullptr && (ctr_ & kCtrKbdInterrupt) != 0) kbd_irq_->trigger();
}

// A command byte at 0x64, or the data byte at 0x60 that the last command asked for.
// The reset command is acted on after mu_ is dropped, so no VM lock is taken under
// the device's.
void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) return;
  bool reset = false;
  {
    std::lock_guard lock(mu_);
    auto answer = [&](uint8_t v) {
      out_ = v;
      out_full_ = true;
    };
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
        case DataFor::kKeyboard:  // no keyboard: dropped
          break;
      }
      data_for_ = DataFor::kKeyboard;
    }
  }
  if (reset) control_.request_shutdown(0, "guest reset through the i8042");
}

}  // namespace labyrinth::devices
