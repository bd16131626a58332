#include "devices/legacy/acpi_pm.h"

namespace labyrinth::devices {

namespace {
constexpr uint64_t kStatus = 0, kControl = 4;
}  // namespace

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t at = offset + i;
    if (at >= kLen) {
      data[i] = 0xFF;  // past the block (a wide access at its end)
      continue;
    }
    uint8_t v = regs_[at];
    if (at < kStatus + 2) v = 0;      // no fixed event is ever pending
    if (at == kControl) v |= kSciEn;  // always in ACPI mode
    data[i] = v;
  }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  bool touched_control = false;
  uint16_t control = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < data.size() && offset + i < kLen; ++i) {
      const uint64_t at = offset + i;
      if (at < kStatus + 2) continue;  // write-1-to-clear, and nothing is ever set
      regs_[at] = data[i];
      touched_control = touched_control || at >= kControl;
    }
    control = static_cast<uint16_t>(regs_[kControl] | (regs_[kControl + 1] << 8));
    if (touched_control && (control & kSlpEn) != 0) {
      regs_[kControl + 1] &= static_cast<uint8_t>(~(kSlpEn >> 8));  // SLP_EN reads back 0
    }
  }
  if (!touched_control || (control & kSlpEn) == 0) return;
  if (((control >> 10) & 7) == kSlpTypS5) {
    control_.request_shutdown(0, "guest powered off (ACPI S5)");
  }
}

}  // namespace labyrinth::devices
