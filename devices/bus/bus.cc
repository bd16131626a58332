#include "devices/bus/bus.h"

#include <algorithm>
#include <mutex>

#include <spdlog/spdlog.h>

namespace labyrinth::devices {

std::string_view to_string(Error e) noexcept {
  switch (e) {
    case Error::overlap:
      return "range overlaps a device already on the bus";
    case Error::empty_range:
      return "empty range";
    case Error::overflow:
      return "range wraps around the address space";
  }
  return "unknown bus error";
}

std::expected<void, Error> Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base,
                                       uint64_t len) {
  if (len == 0) return std::unexpected(Error::empty_range);
  uint64_t last = 0;
  if (__builtin_add_overflow(base, len - 1, &last)) return std::unexpected(Error::overflow);
  std::unique_lock lock(devices_mu_);
  // The first entry at or after base must start after our last byte; the one before
  // base must end at or before base.
  auto next = devices_.lower_bound(base);
  if (next != devices_.end() && next->first <= last) return std::unexpected(Error::overlap);
  if (next != devices_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + (prev->second.len - 1) >= base) return std::unexpected(Error::overlap);
  }
  spdlog::debug("{} bus: {} at {:#x}+{:#x}", name_, device->label(), base, len);
  devices_.emplace(base, Entry{len, std::move(device)});
  return {};
}

// The entry whose range holds all of [addr, addr + size), or nullptr: an access that
// straddles two devices or runs off one's end is unmapped, never split between them.
// Needs devices_mu_ (shared).
const std::pair<const uint64_t, Bus::Entry>* Bus::find(uint64_t addr, uint64_t size) const {
  auto it = devices_.upper_bound(addr);
  if (it == devices_.begin()) return nullptr;
  --it;
  const uint64_t offset = addr - it->first;
  if (offset >= it->second.len || size > it->second.len - offset) return nullptr;
  return &*it;
}

void Bus::log_unmapped(const char* kind, uint64_t addr, size_t size) const {
  const uint64_t n = unmapped_.fetch_add(1, std::memory_order_relaxed) + 1;
  // Rate limit: the first 8, then every power of two; the rest at debug level, so that
  // --log-level debug lists every one.
  const bool warn = n <= 8 || (n & (n - 1)) == 0;
  spdlog::log(warn ? spdlog::level::warn : spdlog::level::debug,
              "{} bus: unmapped {} of {} byte(s) at {:#x} ({} unmapped so far)", name_, kind, size,
              addr, n);
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  std::shared_lock lock(devices_mu_);
  const auto* e = find(addr, data.size());
  if (e == nullptr) {
    // All-ones, as a PC's floating bus reads: how a probing guest learns nothing is
    // there. Logged outside the lock: a slow log sink must not hold up insert().
    std::fill(data.begin(), data.end(), uint8_t{0xFF});
    lock.unlock();
    log_unmapped("read", addr, data.size());
    return false;
  }
  // Zeroed first: a device that answers fewer bytes than asked leaks no stale buffer.
  std::fill(data.begin(), data.end(), uint8_t{0});
  e->second.device->read(addr - e->first, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  std::shared_lock lock(devices_mu_);
  const auto* e = find(addr, data.size());
  if (e == nullptr) {
    lock.unlock();
    log_unmapped("write", addr, data.size());
    return false;
  }
  e->second.device->write(addr - e->first, data);
  return true;
}

}  // namespace labyrinth::devices
