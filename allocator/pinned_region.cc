#include "allocator/pinned_region.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "allocator/page_pool.h"

namespace labyrinth::alloc {

namespace {
constexpr size_t kHuge = 2u << 20;
}

std::expected<PinnedRegion, Error> PinnedRegion::create(size_t bytes, Backing backing) {
  if (bytes == 0 || bytes % kPageSize != 0) return std::unexpected(Error::bad_config);
  if (backing != Backing::small_pages && bytes % kHuge != 0)
    return std::unexpected(Error::bad_config);

  if (backing == Backing::hugetlb) {
    void* p = mmap(
        nullptr, bytes, PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) return std::unexpected(Error::hugetlb_unavailable);
    if (mlock(p, bytes) != 0) {
      munmap(p, bytes);
      return std::unexpected(Error::pin_failed);
    }
    return PinnedRegion(static_cast<std::byte*>(p), bytes, bytes);
  }

  // 4 KiB or THP: over-map by 2 MiB for THP so the region can be 2 MiB aligned.
  const size_t map_size = backing == Backing::thp ? bytes + kHuge : bytes;
  void* p = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return std::unexpected(Error::pin_failed);
  auto* base = static_cast<std::byte*>(p);
  std::byte* data = base;
  if (backing == Backing::thp) {
    const auto addr = reinterpret_cast<uintptr_t>(base);
    data = base + ((kHuge - addr % kHuge) % kHuge);
    // Advice failing (THP disabled system-wide) is not fatal: the memory is still pinned.
    (void)madvise(data, bytes, MADV_HUGEPAGE);
  } else {
    (void)madvise(data, bytes, MADV_NOHUGEPAGE);
  }
  // mlock faults every page in (MCL_ONFAULT is not used) and keeps it resident.
  if (mlock(data, bytes) != 0) {
    munmap(p, map_size);
    return std::unexpected(Error::pin_failed);
  }
  // Never copy the pool's memory into a fork()ed child (e.g. a test's seccomp child
  // would otherwise get copy-on-write pages that fault on first write).
  (void)madvise(base, map_size, MADV_DONTFORK);
  PinnedRegion r(data, bytes, map_size);
  r.data_ = data;
  r.map_base_ = base;
  return r;
}

PinnedRegion::PinnedRegion(PinnedRegion&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      map_size_(std::exchange(other.map_size_, 0)),
      map_base_(std::exchange(other.map_base_, nullptr)) {}

PinnedRegion& PinnedRegion::operator=(PinnedRegion&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    map_size_ = std::exchange(other.map_size_, 0);
    map_base_ = std::exchange(other.map_base_, nullptr);
  }
  return *this;
}

PinnedRegion::~PinnedRegion() {
  reset();
}

void PinnedRegion::reset() noexcept {
  if (data_ != nullptr) {
    munmap(map_base_ != nullptr ? map_base_ : data_, map_size_);
    data_ = nullptr;
    map_base_ = nullptr;
    size_ = map_size_ = 0;
  }
}

namespace {
size_t pinned_size(size_t bytes) {
  return (bytes + kPageSize - 1) / kPageSize * kPageSize;
}
}  // namespace

void* pinned_alloc(size_t bytes) noexcept {
  void* p = mmap(nullptr, pinned_size(bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  if (mlock(p, pinned_size(bytes)) != 0) {
    (void)munmap(p, pinned_size(bytes));
    return nullptr;
  }
  return p;
}

void pinned_free(void* p, size_t bytes) noexcept {
  if (p != nullptr) (void)munmap(p, pinned_size(bytes));
}

}  // namespace labyrinth::alloc
