#include "devices/legacy/pc_testdev.h"

#include <algorithm>
#include <cstring>

namespace labyrinth::devices {

namespace {

// Where in the 12 ports the access falls: the scratch register (either view) at byte
// `first`, or the flush port.
struct PortAccess {
  bool reg = false;
  bool flush = false;
  uint64_t first = 0;  // register byte the access starts at (0..3)
};

PortAccess classify(uint64_t offset) {
  if (offset < PcTestdev::kFlushOffset) return {.reg = true, .first = offset};
  if (offset < PcTestdev::kByteRegOffset) return {.flush = true};
  if (offset < PcTestdev::kPortLen) {
    return {.reg = true, .first = offset - PcTestdev::kByteRegOffset};
  }
  return {};
}

}  // namespace

void PcTestdevPorts::read(uint64_t offset, std::span<uint8_t> data) {
  const PortAccess a = classify(offset);
  if (!a.reg) return;  // the flush port reads as 0 (data arrives zero-filled)
  std::lock_guard lock(mu_);
  // Bytes past the register's 4th stay 0.
  for (size_t i = 0; i < data.size() && a.first + i < reg_.size(); ++i) data[i] = reg_[a.first + i];
}

void PcTestdevPorts::write(uint64_t offset, std::span<const uint8_t> data) {
  const PortAccess a = classify(offset);
  if (a.flush) {
    // QEMU's contract: a 32-bit OUT at 0xE4 only; the page is the address's 4 KiB frame.
    if (offset != PcTestdev::kFlushOffset || data.size() != 4) return;
    uint32_t addr = 0;
    std::memcpy(&addr, data.data(), sizeof addr);
    host_.flush_page(addr & ~uint64_t{0xFFF});
    return;
  }
  if (!a.reg) return;
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < data.size() && a.first + i < reg_.size(); ++i) reg_[a.first + i] = data[i];
}

void PcTestdevIrqLines::write(uint64_t offset, std::span<const uint8_t> data) {
  // One byte per line; a wider OUT would name several lines at once, which QEMU refuses.
  if (offset >= PcTestdev::kIrqLen || data.size() != 1) return;
  host_.set_irq_level(static_cast<uint32_t>(offset), data[0] != 0);
}

void PcTestdevIomem::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= kLen) return;
  const size_t n = std::min<uint64_t>(data.size(), kLen - offset);
  std::lock_guard lock(mu_);
  std::memcpy(data.data(), mem_.data() + offset, n);
}

void PcTestdevIomem::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kLen) return;
  const size_t n = std::min<uint64_t>(data.size(), kLen - offset);
  std::lock_guard lock(mu_);
  std::memcpy(mem_.data() + offset, data.data(), n);
}

}  // namespace labyrinth::devices
