// vmm/memory/guest_ram_view.h — devices::GuestRam over GuestMemory's checked translation.
//
// The devices reach guest RAM only through the devices::GuestRam interface (they know
// nothing of vmm/); this is the VMM's side of it, shared by the lnics and virtio-net.
//
//   GuestRamView ram(*memory);   // must not outlive memory
//   auto span = ram.translate(gpa, len);   // std::nullopt outside RAM or on overflow
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "devices/guest_ram.h"
#include "vmm/memory/guest_memory.h"

namespace labyrinth::vmm {

class GuestRamView final : public devices::GuestRam {
 public:
  explicit GuestRamView(const GuestMemory& mem) : mem_(mem) {}
  std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t len) const override {
    auto r = mem_.translate(gpa, len);
    if (!r) return std::nullopt;
    return *r;
  }

 private:
  const GuestMemory& mem_;
};

}  // namespace labyrinth::vmm
