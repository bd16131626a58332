#include "devices/pci/msix.h"

#include <algorithm>
#include <cstring>

#include "devices/pci/type0_config.h"

namespace labyrinth::devices {

namespace {

constexpr auto put16 = PciType0Config::put16;
constexpr auto put32 = PciType0Config::put32;

// Little-endian, truncated to the access width (the bus hands 1, 2, 4 or 8 bytes).
void store(std::span<uint8_t> data, uint64_t v) {
  std::memcpy(data.data(), &v, std::min<size_t>(data.size(), 8));
}

}  // namespace

std::string_view to_string(MsixError e) {
  switch (e) {
    case MsixError::bad_access:
      return "MSI-X access outside the table or PBA, or of a width it does not take";
    case MsixError::rejected_message:
      return "MSI-X entry unmasked with an unusable message";
  }
  return "unknown MSI-X error";
}

MsixTable::MsixTable(std::span<MsiLine* const> lines)
    : nvec_(static_cast<uint16_t>(std::min<size_t>(lines.size(), kMaxVectors))) {
  std::copy_n(lines.begin(), nvec_, lines_.begin());
}

void MsixTable::put_capability(std::array<uint8_t, 256>& cfg, uint8_t at, uint8_t next,
                               uint16_t vectors, uint32_t table_off, uint32_t pba_off) {
  cfg[at] = kCapId;
  cfg[at + 1] = next;
  put16(cfg, at + 2, static_cast<uint16_t>(vectors - 1));  // table size - 1
  put32(cfg, at + 4, table_off);                           // BIR 0 in the low 3 bits
  put32(cfg, at + 8, pba_off);
}

uint32_t MsixTable::control_bits() const {
  std::lock_guard lock(mu_);
  return (enabled_ ? kEnable : 0) | (function_mask_ ? kFunctionMask : 0);
}

void MsixTable::write_control(uint32_t value, uint32_t mask) {
  // A write that misses the upper byte of Message Control (e.g. one to the capability
  // id or the table size) changes no mask and must not re-deliver anything.
  if ((mask & (kEnable | kFunctionMask)) == 0) return;
  std::lock_guard lock(mu_);
  if ((mask & kEnable) != 0) enabled_ = (value & kEnable) != 0;
  if ((mask & kFunctionMask) != 0) function_mask_ = (value & kFunctionMask) != 0;
  update_masks();
}

std::expected<void, MsixError> MsixTable::read_table(uint64_t offset,
                                                     std::span<uint8_t> data) const {
  if (data.size() != 4 || offset % 4 != 0 || offset >= uint64_t{kEntrySize} * nvec_) {
    return std::unexpected(MsixError::bad_access);
  }
  std::lock_guard lock(mu_);
  const Entry& e = entries_[offset / kEntrySize];
  const uint32_t words[4] = {static_cast<uint32_t>(e.address),
                             static_cast<uint32_t>(e.address >> 32), e.data,
                             e.entry_masked ? 1u : 0u};
  store(data, words[(offset % kEntrySize) / 4]);
  return {};
}

std::expected<void, MsixError> MsixTable::write_table(uint64_t offset,
                                                      std::span<const uint8_t> data) {
  if (data.size() != 4 || offset % 4 != 0 || offset >= uint64_t{kEntrySize} * nvec_) {
    return std::unexpected(MsixError::bad_access);
  }
  uint32_t value = 0;
  std::memcpy(&value, data.data(), 4);
  std::lock_guard lock(mu_);
  const size_t i = offset / kEntrySize;
  Entry& e = entries_[i];
  std::expected<void, MsixError> result;
  switch ((offset % kEntrySize) / 4) {
    case 0:
      e.address = (e.address & 0xFFFFFFFF00000000ull) | value;
      break;
    case 1:
      e.address = (e.address & 0xFFFFFFFFull) | (uint64_t{value} << 32);
      break;
    case 2:
      e.data = value;
      break;
    default:
      e.entry_masked = (value & 1) != 0;
      // The message is taken when the entry is (re)unmasked: Linux masks an entry
      // while it rewrites the address and data.
      if (!e.entry_masked && !lines_[i]->configure(e.address, e.data)) {
        result = std::unexpected(MsixError::rejected_message);
      }
      break;
  }
  update_masks();
  return result;
}

std::expected<void, MsixError> MsixTable::read_pba(uint64_t offset, std::span<uint8_t> data) const {
  const size_t w = data.size();
  if (w == 0 || offset + w > kPbaSize || offset % w != 0) {
    return std::unexpected(MsixError::bad_access);
  }
  // Lock-free like fire(): the bits are a snapshot, as they would be on hardware.
  uint64_t pba = 0;
  for (uint16_t i = 0; i < nvec_; ++i) {
    if (entries_[i].pending.load(std::memory_order_seq_cst)) pba |= uint64_t{1} << i;
  }
  store(data, pba >> (8 * offset));
  return {};
}

void MsixTable::update_masks() {
  for (uint16_t i = 0; i < nvec_; ++i) {
    Entry& e = entries_[i];
    const bool masked = !enabled_ || function_mask_ || e.entry_masked;
    e.masked.store(masked, std::memory_order_seq_cst);
    // Unmasked: deliver what was raised while masked (pairs with fire()'s re-check).
    if (!masked && e.pending.exchange(false, std::memory_order_seq_cst)) lines_[i]->trigger();
  }
}

void MsixTable::fire(uint16_t vector) {
  if (vector >= nvec_) return;  // NO_VECTOR: the driver asked for no interrupt (no INTx)
  Entry& e = entries_[vector];
  if (!e.masked.load(std::memory_order_seq_cst)) {
    lines_[vector]->trigger();
    return;
  }
  e.pending.store(true, std::memory_order_seq_cst);
  // Unmasked meanwhile, and update_masks() may have looked at pending before our store.
  if (!e.masked.load(std::memory_order_seq_cst) &&
      e.pending.exchange(false, std::memory_order_seq_cst)) {
    lines_[vector]->trigger();
  }
}

}  // namespace labyrinth::devices
