// devices/pci/msix.h — the MSI-X register model of one PCI function: table, PBA, masks.
//
// MSI-X (PCI 3.0, 6.8.2) gives a function N vectors, each a 16-byte table entry
// (message address low, high, data, vector control with the mask in bit 0), a pending
// bit array (one qword here: at most 64 vectors) and two bits in the capability's
// Message Control word: MSI-X enable and function mask. A vector signals only when
// enabled and neither function- nor entry-masked; a signal raised while masked sets its
// pending bit and fires when the vector is unmasked.
//
// The function owns the config space and its BAR; it puts the capability in with
// put_capability(), forwards the capability's first dword and the table/PBA accesses
// (offsets relative to the table and to the PBA), and signals with fire():
//
//   MsixTable msix(lines);                               // vector i -> *lines[i]
//   MsixTable::put_capability(cfg, 0x84, 0, msix.size(), 0x4000, 0x5000);
//   read_config(0x84):  return image | msix.control_bits();
//   write_config(0x84): msix.write_control(value, mask);
//   BAR + 0x4000 + off: msix.write_table(off, data)    // an error: count it
//   msix.fire(vector);                                   // any thread, no lock
//
// A message is handed to MsiLine::configure when its entry is unmasked, not on each
// address or data write: Linux masks an entry while it rewrites it. configure refuses
// unusable messages; write_table reports that as rejected_message for the function to
// count (the vector then stays silent, MsiLine's contract).
//
// Threads: mu_ guards the entries' messages and the control bits (config and BAR
// accesses on vCPU threads; lock order: <the function's lock> -> MsixTable::mu_).
// fire() comes from a device thread and takes no lock: each vector's effective mask and
// pending bit are atomics (seq_cst: fire stores pending then re-reads the mask; an
// unmask stores the mask then takes pending, so one of the two delivers a signal raised
// during the unmask, and only one: pending is taken by exchange).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/msi_line.h"

namespace labyrinth::devices {

enum class MsixError {
  bad_access,        // outside the table/PBA, or not a naturally aligned access it takes
  rejected_message,  // an entry unmasked with a message MsiLine::configure refused
};
std::string_view to_string(MsixError e);

class MsixTable {
 public:
  static constexpr uint16_t kMaxVectors = 64;  // the PBA is one qword
  static constexpr uint8_t kCapId = 0x11;
  static constexpr uint32_t kEnable = 0x80000000u;        // in the capability's dword 0
  static constexpr uint32_t kFunctionMask = 0x40000000u;  // in the capability's dword 0
  static constexpr uint32_t kEntrySize = 16;
  static constexpr uint32_t kPbaSize = 8;

  // lines[i] signals vector i; at most kMaxVectors are used; they outlive the table.
  explicit MsixTable(std::span<MsiLine* const> lines);

  // The MSI-X capability at cfg[at] (12 bytes), table and PBA in BAR 0 at the offsets.
  static void put_capability(std::array<uint8_t, 256>& cfg, uint8_t at, uint8_t next,
                             uint16_t vectors, uint32_t table_off, uint32_t pba_off);

  uint16_t size() const { return nvec_; }

  // The capability's dword 0 as enable and function-mask bits (OR into the image).
  uint32_t control_bits() const;
  // A config write to the capability's dword 0 (mask: the bytes written).
  void write_control(uint32_t value, uint32_t mask);

  // offset relative to the table; 4-byte aligned dword accesses only.
  std::expected<void, MsixError> read_table(uint64_t offset, std::span<uint8_t> data) const;
  std::expected<void, MsixError> write_table(uint64_t offset, std::span<const uint8_t> data);
  // offset relative to the PBA; any naturally aligned access within its qword.
  std::expected<void, MsixError> read_pba(uint64_t offset, std::span<uint8_t> data) const;

  // Signal vector (lock-free). A vector >= size() (virtio's NO_VECTOR) does nothing.
  void fire(uint16_t vector);

 private:
  struct Entry {  // guarded by mu_ except the atomics
    uint64_t address = 0;
    uint32_t data = 0;
    bool entry_masked = true;
    std::atomic<bool> masked{true};  // effective: disabled, function-masked or entry-masked
    std::atomic<bool> pending{false};
  };

  void update_masks();  // needs mu_: recompute every vector's effective mask

  const uint16_t nvec_;
  std::array<MsiLine*, kMaxVectors> lines_{};
  mutable std::mutex mu_;
  bool enabled_ = false, function_mask_ = false;
  std::array<Entry, kMaxVectors> entries_;
};

}  // namespace labyrinth::devices
