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
    data[0] = kStatusSystemFlag | kStatusUnlocked | (out_full_ ? kStatusOutputFull : 0);
  } else if (offset == kData) {
    data[0] = out_;
    out_full_ = false;
  }
  // 0x61-0x63: 0.
}

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
      ctr_write_pending_ = false;
      switch (data[0]) {
        case kCmdReadCtr:
          answer(ctr_);
          break;
        case kCmdWriteCtr:
          ctr_write_pending_ = true;
          break;
        case kCmdSelfTest:
          answer(0x55);
          break;
        case kCmdAuxTest:
        case kCmdKbdTest:
          answer(0x00);
          break;
        case LABYRINTH_I8042_RESET:
          reset = true;
          break;
        default:  // port enable/disable and the rest: accepted, no answer
          break;
      }
    } else if (offset == kData && ctr_write_pending_) {
      ctr_ = data[0];
      ctr_write_pending_ = false;
    }
  }
  if (reset) control_.request_shutdown(0, "guest reset through the i8042");
}

}  // namespace labyrinth::devices
