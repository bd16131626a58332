// devices/guest_ram.h — how a device reaches guest RAM without knowing vmm/.
//
// vmm/ implements it on GuestMemory: translate() is the one checked translation of a
// guest-physical range to host bytes (bounds and overflow checked; the range must
// lie inside one RAM region). Devices never do arithmetic on guest pointers.
//
//   auto bytes = ram.translate(desc.buf_gpa, desc.len);   // untrusted gpa/len
//   if (!bytes) { ++metrics.bad_descriptor; return; }
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace labyrinth::devices {

class GuestRam {
 public:
  virtual ~GuestRam() = default;
  // Host bytes of [gpa, gpa + len) or nullopt if any byte is outside RAM or it overflows.
  // RAM mappings are fixed for the VM's life, so a span stays valid as long as the VM.
  virtual std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t len) const = 0;
};

}  // namespace labyrinth::devices
