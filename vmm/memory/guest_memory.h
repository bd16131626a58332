// vmm/memory/guest_memory.h — guest RAM and the one way to reach it.
//
// RAM is anonymous host memory, one mapping per range of the memory map, each
// registered as a KVM memory slot. Host code never does pointer arithmetic on guest
// addresses: every access goes through translate(), which checks that [gpa, gpa+len)
// lies inside one RAM range and does not overflow (cf. Solo5's HVT_CHECKED_GPA_P).
//
//   auto mem = GuestMemory::create(layout.ram).value();
//   mem->register_slots(vm);                         // removed again in ~GuestMemory
//   auto bytes = mem->translate(0x1000, 4096);       // std::span<std::byte> or an Error
//   mem->write_obj(LABYRINTH_BOOT_INFO_GPA, info);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "vmm/error.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/layout.h"
#include "vmm/mmap_region.h"

namespace labyrinth::vmm {

class GuestMemory {
 public:
  // Maps zero-filled host memory for each range (4 KiB aligned, non-overlapping).
  static std::expected<std::unique_ptr<GuestMemory>, Error> create(std::span<const GpaRange> ram);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // Adds one memory slot per range to vm; the slots are removed by the destructor
  // (vm must outlive this object).
  std::expected<void, Error> register_slots(Vm& vm);

  // The checked translation: the host bytes of [gpa, gpa + len), or
  // Error::gpa_overflow / Error::gpa_out_of_range. len 0 is valid inside RAM.
  std::expected<std::span<std::byte>, Error> translate(uint64_t gpa, uint64_t len) const;

  std::expected<void, Error> write(uint64_t gpa, std::span<const std::byte> data) const;
  std::expected<void, Error> read(uint64_t gpa, std::span<std::byte> out) const;
  template <class T>
  std::expected<void, Error> write_obj(uint64_t gpa, const T& obj) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, std::as_bytes(std::span(&obj, 1)));
  }
  template <class T>
  std::expected<T, Error> read_obj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T obj{};
    if (auto r = read(gpa, std::as_writable_bytes(std::span(&obj, 1))); !r) {
      return std::unexpected(r.error());
    }
    return obj;
  }

  const std::vector<GpaRange>& ranges() const noexcept { return ranges_; }
  // Host pages of RAM currently resident (mincore), i.e. guest memory touched.
  uint64_t resident_bytes() const;

 private:
  GuestMemory() = default;
  std::vector<GpaRange> ranges_;
  std::vector<MmapRegion> host_;  // host_[i] backs ranges_[i]
  Vm* vm_ = nullptr;              // set by register_slots
  std::vector<uint32_t> slots_;
};

}  // namespace labyrinth::vmm
