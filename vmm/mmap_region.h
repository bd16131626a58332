// vmm/mmap_region.h — a move-only mmap'd region, unmapped on destruction.
//
//   auto ram = MmapRegion::anonymous(128 << 20);          // MAP_NORESERVE, zero-filled
//   auto run = MmapRegion::shared_fd(vcpu_fd, mmap_size); // e.g. struct kvm_run
#pragma once

#include <cstddef>
#include <expected>
#include <utility>

#include "vmm/error.h"

namespace labyrinth::vmm {

class MmapRegion {
 public:
  // Private anonymous read/write memory, lazily backed (MAP_NORESERVE).
  static std::expected<MmapRegion, Error> anonymous(size_t size);
  // MAP_SHARED read/write mapping of fd at offset 0.
  static std::expected<MmapRegion, Error> shared_fd(int fd, size_t size);

  MmapRegion() noexcept = default;
  MmapRegion(MmapRegion&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  MmapRegion& operator=(MmapRegion&& other) noexcept;
  MmapRegion(const MmapRegion&) = delete;
  MmapRegion& operator=(const MmapRegion&) = delete;
  ~MmapRegion() { reset(); }

  std::byte* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  void reset() noexcept;

 private:
  MmapRegion(std::byte* data, size_t size) noexcept : data_(data), size_(size) {}
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace labyrinth::vmm
