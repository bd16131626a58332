// devices/bus/bus.h — one address-range bus for port I/O and MMIO.
//
// A Bus maps non-overlapping [base, base + len) ranges to BusDevices (Cloud
// Hypervisor / crosvm style). vCPU threads dispatch guest accesses through it:
//
//   Bus pio("pio");
//   pio.insert(uart, 0x3F8, 8).value();                   // Error::overlap if taken
//   uint8_t v[1];
//   pio.read(0x3FD, v);     // -> uart->read(5, v); unmapped: all-ones, logged
//   pio.write(0x501, bytes);
//
// Devices see the offset into their range and the access width (data.size()).
// Locking: devices_mu_ (shared for dispatch, exclusive for insert) is taken before
// any device's own lock; devices never call back into the bus. Order:
//   Bus::devices_mu_  ->  <device>::mu_
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>

namespace labyrinth::devices {

enum class Error : uint8_t {
  overlap = 1,  // the range intersects one already on the bus
  empty_range,  // len == 0
  overflow,     // base + len wraps
};
std::string_view to_string(Error e) noexcept;

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // Debug label ("uart16550@0x3f8"), used in logs.
  virtual std::string_view label() const = 0;
  // data arrives zero-filled; a device fills what it implements.
  virtual void read(uint64_t offset, std::span<uint8_t> data) { (void)offset, (void)data; }
  virtual void write(uint64_t offset, std::span<const uint8_t> data) { (void)offset, (void)data; }
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  std::expected<void, Error> insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len);
  // Dispatch. Return false when no device covers the whole access (read: data is
  // filled with 0xFF). Thread-safe.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  uint64_t unmapped_accesses() const noexcept { return unmapped_.load(std::memory_order_relaxed); }
  std::string_view name() const noexcept { return name_; }

 private:
  struct Entry {
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  // The entry whose range covers [addr, addr + size), or nullptr. Needs devices_mu_.
  const std::pair<const uint64_t, Entry>* find(uint64_t addr, uint64_t size) const;
  void log_unmapped(const char* kind, uint64_t addr, size_t size) const;

  std::string name_;
  mutable std::shared_mutex devices_mu_;       // guards devices_
  std::map<uint64_t, Entry> devices_;          // by base
  mutable std::atomic<uint64_t> unmapped_{0};  // relaxed: a statistic, orders nothing
};

}  // namespace labyrinth::devices
