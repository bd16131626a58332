#include "devices/legacy/cmos.h"

#include <utility>

namespace labyrinth::devices {

namespace {

// Status B says BCD (bit 2 clear), so every clock register is two BCD digits.
uint8_t bcd(int v) {
  return static_cast<uint8_t>(((v / 10) % 10) << 4 | (v % 10));
}

constexpr uint8_t kAlarmSeconds = 0x01, kAlarmMinutes = 0x03, kAlarmHours = 0x05;

std::tm utc(std::time_t t) {
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) tm = std::tm{};  // out of gmtime's range: zeros
  return tm;
}

// An alarm register matches a BCD clock value when equal or "don't care" (0xC0-0xFF).
bool alarm_matches(uint8_t alarm, int value) {
  return alarm >= 0xC0 || alarm == bcd(value);
}

}  // namespace

// The clock is read at each access rather than ticked; status A's UIP is derived from
// where in its second the clock is. Needs mu_.
uint8_t Cmos::reg(uint8_t index) {
  const Clock::time_point now = now_();
  const std::tm tm = utc(Clock::to_time_t(now));
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
    case kStatusA: {
      const auto into = now.time_since_epoch() % std::chrono::seconds(1);
      const auto sub = into < Clock::duration::zero() ? into + std::chrono::seconds(1) : into;
      return sub >= std::chrono::seconds(1) - kUipHold ? 0x26 | kStatusAUip : 0x26;
    }
    case kStatusB:
      return ram_[kStatusB] == 0 ? 0x02 : ram_[kStatusB];
    case kStatusC:
      return std::exchange(status_c_, 0);
    case kStatusD:
      return 0x80;
    default:
      return ram_[index];
  }
}

std::optional<Cmos::Clock::time_point> Cmos::next_alarm() const {
  std::lock_guard lock(mu_);
  if ((ram_[kStatusB] & kStatusBAie) == 0) return std::nullopt;
  const uint8_t s = ram_[kAlarmSeconds], m = ram_[kAlarmMinutes], h = ram_[kAlarmHours];
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(now_());
  // The first whole second after now whose time matches: within a day, or never (an
  // alarm register no clock value equals, e.g. 0x99 hours).
  for (int ahead = 1; ahead <= 24 * 3600; ++ahead) {
    const auto t = now + std::chrono::seconds(ahead);
    const std::tm tm = utc(Clock::to_time_t(t));
    if (alarm_matches(s, tm.tm_sec) && alarm_matches(m, tm.tm_min) &&
        alarm_matches(h, tm.tm_hour)) {
      return t;
    }
  }
  return std::nullopt;
}

void Cmos::alarm_fired() {
  std::lock_guard lock(mu_);
  status_c_ = kStatusCIrqf | kStatusCAf;
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
  // Time and status A/C/D are read-only here; the alarm registers, status B and the RAM
  // keep what is written (B keeps its 24-hour/BCD format bits so the clock reads stay
  // consistent).
  if (index_ == kStatusB) {
    ram_[kStatusB] = static_cast<uint8_t>((data[0] & ~0x06) | 0x02);
  } else if (index_ == kAlarmSeconds || index_ == kAlarmMinutes || index_ == kAlarmHours ||
             (index_ > kStatusD && index_ != 0x32)) {
    ram_[index_] = data[0];
  }
}

}  // namespace labyrinth::devices
