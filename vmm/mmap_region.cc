#include "vmm/mmap_region.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

std::expected<MmapRegion, Error> MmapRegion::anonymous(size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    spdlog::error("mmap of {} bytes of anonymous memory: {}", size, std::strerror(errno));
    return std::unexpected(Error::out_of_memory);
  }
  return MmapRegion(static_cast<std::byte*>(p), size);
}

std::expected<MmapRegion, Error> MmapRegion::shared_fd(int fd, size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    spdlog::error("mmap of fd {} ({} bytes): {}", fd, size, std::strerror(errno));
    return std::unexpected(Error::out_of_memory);
  }
  return MmapRegion(static_cast<std::byte*>(p), size);
}

MmapRegion& MmapRegion::operator=(MmapRegion&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MmapRegion::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);  // only fails for bad arguments
  data_ = nullptr;
  size_ = 0;
}

}  // namespace labyrinth::vmm
