#include "devices/pci/pci_testdev.h"

#include <cstring>
#include <string_view>

namespace labyrinth::devices {

namespace {

// The six tests in QEMU's order: test t of BAR space s is t = s * 3 + n.
constexpr std::string_view kNames[] = {
    "mmio-no-eventfd",   "mmio-wildcard-eventfd",   "mmio-datamatch-eventfd",
    "portio-no-eventfd", "portio-wildcard-eventfd", "portio-datamatch-eventfd",
};

// Test t's writes go to the upper half of its BAR, one byte apart per test (QEMU's
// IOTEST_SIZE(t) + t): beyond every header, so a test write never selects a test.
constexpr uint32_t test_offset(uint32_t t) {
  return (t < PciTestdev::kTestsPerBar ? PciTestdev::kMemLen : PciTestdev::kIoLen) / 2 + t;
}
// The wildcard test (n == 1) counts any value; the others only kDataMatch.
constexpr bool matches_data(uint32_t t) {
  return t % PciTestdev::kTestsPerBar != 1;
}
constexpr uint8_t test_data(uint32_t t) {
  return matches_data(t) ? PciTestdev::kDataMatch : PciTestdev::kNoMatch;
}

static_assert(test_offset(2) < PciTestdev::kMemLen && test_offset(5) < PciTestdev::kIoLen);
static_assert(test_offset(3) >= PciTestdev::kNameOff + 32, "test writes lie past every header");

// The adapters the buses hold; each keeps the device alive.
class Function final : public PciFunction {
 public:
  explicit Function(std::shared_ptr<PciTestdev> dev) : dev_(std::move(dev)) {}
  std::string_view label() const override { return "pci-testdev"; }
  uint32_t read_config(uint8_t offset) override { return dev_->read_config(offset); }
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override {
    dev_->write_config(offset, value, mask);
  }

 private:
  std::shared_ptr<PciTestdev> dev_;
};

class Bar final : public BusDevice {
 public:
  Bar(std::shared_ptr<PciTestdev> dev, PciTestdev::Space space)
      : dev_(std::move(dev)), space_(space) {}
  std::string_view label() const override {
    return space_ == PciTestdev::Space::mem ? "pci-testdev-mmio" : "pci-testdev-portio";
  }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    dev_->bar_read(space_, offset, data);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    dev_->bar_write(space_, offset, data);
  }

 private:
  std::shared_ptr<PciTestdev> dev_;
  PciTestdev::Space space_;
};

}  // namespace

std::shared_ptr<PciFunction> PciTestdev::function() {
  return std::make_shared<Function>(shared_from_this());
}
std::shared_ptr<BusDevice> PciTestdev::mem_bar() {
  return std::make_shared<Bar>(shared_from_this(), Space::mem);
}
std::shared_ptr<BusDevice> PciTestdev::io_bar() {
  return std::make_shared<Bar>(shared_from_this(), Space::io);
}

// The header is built on the fly from the test's constants and its count: nothing the
// guest writes can change its layout, and a position past the name reads 0 as in QEMU
// (which also reads 0 for the name's own NUL: it refuses the last byte of its buffer).
uint8_t PciTestdev::header_byte(uint64_t p) const {
  if (current_ == kNone) return 0;
  const auto t = static_cast<uint32_t>(current_);
  if (p >= kNameOff) {
    const std::string_view name = kNames[t];
    return p - kNameOff < name.size() ? static_cast<uint8_t>(name[p - kNameOff]) : 0;
  }
  uint8_t hdr[kNameOff] = {};
  hdr[kTestOff] = static_cast<uint8_t>(t);
  hdr[kWidthOff] = 1;  // QEMU's IOTEST_ACCESS_WIDTH
  const uint32_t off = test_offset(t), count = counts_[t];
  std::memcpy(&hdr[kOffsetOff], &off, 4);  // little endian, as the guest reads it
  hdr[kDataOff] = test_data(t);
  std::memcpy(&hdr[kCountOff], &count, 4);
  return hdr[p];
}

void PciTestdev::write_byte(Space space, uint64_t p, uint8_t v) {
  if (p == kTestOff) {
    // Selecting starts the test afresh; an unknown number leaves none selected.
    current_ = kNone;
    if (v >= kTestsPerBar) return;
    current_ = static_cast<int>(static_cast<uint32_t>(space) * kTestsPerBar + v);
    counts_[static_cast<uint32_t>(current_)] = 0;
    return;
  }
  if (current_ == kNone) return;
  const auto t = static_cast<uint32_t>(current_);
  // A test of the other BAR, another offset or (datamatch) another value does not count.
  if (t / kTestsPerBar != static_cast<uint32_t>(space) || p != test_offset(t)) return;
  if (matches_data(t) && v != test_data(t)) return;
  ++counts_[t];  // wraps after 2^32 writes, as QEMU's
}

void PciTestdev::bar_read(Space space, uint64_t offset, std::span<uint8_t> data) {
  const uint64_t len = space == Space::mem ? kMemLen : kIoLen;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t p = offset + i;
    // Past the BAR (only a caller that bypasses the bus): 0, nothing read.
    data[i] = (offset < len && i < len - offset) ? header_byte(p) : 0;
  }
}

void PciTestdev::bar_write(Space space, uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t len = space == Space::mem ? kMemLen : kIoLen;
  std::lock_guard lock(mu_);
  // A byte at a time, as QEMU's region (max access size 1) splits a wider access.
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset >= len || i >= len - offset) return;
    write_byte(space, offset + i, data[i]);
  }
}

uint32_t PciTestdev::read_config(uint8_t offset) {
  std::lock_guard lock(mu_);
  switch (offset & 0xFC) {
    case 0x04:
      return command_;  // status 0: no capability list
    case 0x10:
      return bar_probe_[0] ? ~(kMemLen - 1) : kMemBar;  // memory, 32-bit, non-prefetchable
    case 0x14:
      return bar_probe_[1] ? ~uint32_t{kIoLen - 1u} | 1u : uint32_t{kIoBar} | 1u;  // I/O space
    case 0x3C:
      return irq_line_;  // interrupt pin 0: none
    default:
      return pci_header_dword(kId, offset & 0xFC);
  }
}

void PciTestdev::write_config(uint8_t offset, uint32_t value, uint32_t mask) {
  const auto reg = static_cast<uint8_t>(offset & 0xFC);
  std::lock_guard lock(mu_);
  switch (reg) {
    case 0x04:
      // Stored for the guest to read back; the BARs decode whatever it says (they are fixed).
      command_ = static_cast<uint16_t>(((command_ & ~mask) | (value & mask)) & kCommandMask);
      break;
    case 0x10:
    case 0x14:
      // A whole all-ones write is the size probe; any other write ends it (the suite writes
      // the old value back) and does not move the BAR.
      bar_probe_[(reg - 0x10) / 4] = mask == 0xFFFFFFFFu && value == 0xFFFFFFFFu;
      break;
    case 0x3C:
      if ((mask & 0xFF) != 0) irq_line_ = static_cast<uint8_t>(value);
      break;
    default:
      break;  // read-only
  }
}

}  // namespace labyrinth::devices
