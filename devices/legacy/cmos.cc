#include "devices/legacy/cmos.h"

namespace labyrinth::devices {

namespace {

// Status B says BCD (bit 2 clear), so every clock register is two BCD digits.
uint8_t bcd(int v) {
  return static_cast<uint8_t>(((v / 10) % 10) << 4 | (v % 10));
}

}  // namespace

// The clock is read at each access rather than ticked: there is no update cycle to
// model, which is why status A never shows "update in progress". Needs mu_.
uint8_t Cmos::reg(uint8_t index) const {
  const std::time_t t = now_();
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) tm = std::tm{};  // cannot happen for time(): zeros
  switch (index) {
    case 0x00:
      return bcd(tm.tm_sec);
    case 0x02:
      return bcd(tm.tm_min);
    case 0x04:
      return bcd(tm.tm_hour);
    case 0x06:
      return bcd(tm.tm_wday + 1);
    case 0x07:
      return bcd(tm.tm_mday);
    case 0x08:
      return bcd(tm.tm_mon + 1);
    case 0x09:
      return bcd(tm.tm_year % 100);
    case 0x32:
      return bcd((tm.tm_year + 1900) / 100);
    case kStatusA:
      return 0x26;
    case kStatusB:
      return ram_[kStatusB] == 0 ? 0x02 : ram_[kStatusB];
    case kStatusC:
      return 0;
    case kStatusD:
      return 0x80;
    default:
      return ram_[index];
  }
}

// Byte ports only (0x70 index, 0x71 data); a wider access reads as 0.
void Cmos::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1) return;
  std::lock_guard lock(mu_);
  data[0] = offset == 0 ? index_ : reg(index_);
}

void Cmos::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1) return;
  std::lock_guard lock(mu_);
  if (offset == 0) {
    index_ = data[0] & 0x7F;  // bit 7: NMI disable, not modelled
    return;
  }
  // Time and status A/C/D are read-only here; status B and the RAM keep what is written
  // (B keeps its 24-hour/BCD format bits so the clock reads stay consistent).
  if (index_ == kStatusB) {
    ram_[kStatusB] = static_cast<uint8_t>((data[0] & ~0x06) | 0x02);
  } else if (index_ > kStatusD && index_ != 0x32) {
    ram_[index_] = data[0];
  }
}

}  // namespace labyrinth::devices
