#include "devices/legacy/acpi_pm.h"

namespace labyrinth::devices {

namespace {
constexpr uint64_t kStatus = 0, kEnable = 2, kControl = 4, kTimer = 8;
}  // namespace

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  // The PM timer, only when the read reaches it: 24 bits at 3.579545 MHz (split so that
  // years of uptime cannot overflow).
  uint32_t timer = 0;
  if (offset + data.size() > kTimer) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
    const uint64_t sec = static_cast<uint64_t>(ns) / 1'000'000'000,
                   sub = static_cast<uint64_t>(ns) % 1'000'000'000;
    timer = static_cast<uint32_t>((sec * kTimerHz + sub * kTimerHz / 1'000'000'000) & 0xFFFFFF);
  }
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    uint8_t v = 0xFF;  // past the block (a wide access at its end), or the gap at 6-7
    if (at < kEnable) {
      v = static_cast<uint8_t>(status_ >> (8 * (at - kStatus)));
    } else if (at < kControl + 2) {
      v = regs_[at];
      if (at == kControl) v |= kSciEn;  // always in ACPI mode
    } else if (at >= kTimer && at < kTimer + kTimerLen) {
      v = static_cast<uint8_t>(timer >> (8 * (at - kTimer)));
    }
    data[i] = v;
  }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  bool touched_control = false;
  uint16_t control = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < data.size() && offset + i < kControl + 2; ++i) {
      const uint64_t at = offset + i;
      if (at < kEnable) {  // write 1 to clear
        status_ &= static_cast<uint16_t>(~(uint16_t{data[i]} << (8 * (at - kStatus))));
        continue;
      }
      regs_[at] = data[i];
      touched_control = touched_control || at >= kControl;
    }
    control = static_cast<uint16_t>(regs_[kControl] | (regs_[kControl + 1] << 8));
    if (touched_control && (control & kSlpEn) != 0) {
      regs_[kControl + 1] &= static_cast<uint8_t>(~(kSlpEn >> 8));  // SLP_EN reads back 0
    }
  }
  if (!touched_control || (control & kSlpEn) == 0) return;
  const unsigned type = (control >> 10) & 7;
  if (type == kSlpTypS5) {
    control_.request_shutdown(0, "guest powered off (ACPI S5)");
  } else if (type == kSlpTypS3) {
    control_.request_suspend();
  }
}

bool AcpiPm::rtc_wake_enabled() const {
  std::lock_guard lock(mu_);
  return ((regs_[kEnable] | regs_[kEnable + 1] << 8) & kRtcEn) != 0;
}

void AcpiPm::woke(bool rtc) {
  std::lock_guard lock(mu_);
  status_ |= static_cast<uint16_t>(kWakSts | (rtc ? kRtcSts : 0));
}

}  // namespace labyrinth::devices
