#include "allocator/pinned_region.h"

#include <sys/mman.h>

#include <cerrno>
#include <utility>

#include "allocator/page.h"

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

std::expected<PinnedRegion, Error> PinnedRegion::create_at(std::byte* addr, size_t bytes,
                                                           Backing backing) {
  if (bytes == 0 || bytes % kPageSize != 0) return std::unexpected(Error::bad_config);
  if (backing != Backing::small_pages &&
      (bytes % kHuge != 0 || reinterpret_cast<uintptr_t>(addr) % kHuge != 0)) {
    return std::unexpected(Error::bad_config);
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  if (backing == Backing::hugetlb) flags |= MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) | MAP_POPULATE;
  // MAP_FIXED replaces the reservation's PROT_NONE pages in [addr, addr + bytes) only.
  void* p = mmap(addr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    // A failed MAP_FIXED may already have removed the reservation there: restore it.
    (void)mmap(addr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
               0);
    return std::unexpected(backing == Backing::hugetlb ? Error::hugetlb_unavailable
                                                       : Error::pin_failed);
  }
  PinnedRegion r(addr, bytes, bytes);
  r.fixed_ = true;  // from here on, reset() re-reserves the range
  (void)madvise(addr, bytes, backing == Backing::thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  if (mlock(addr, bytes) != 0) return std::unexpected(Error::pin_failed);
  (void)madvise(addr, bytes, MADV_DONTFORK);
  return r;
}

PinnedRegion::PinnedRegion(PinnedRegion&& other) noexcept
    : fixed_(std::exchange(other.fixed_, false)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      map_size_(std::exchange(other.map_size_, 0)),
      map_base_(std::exchange(other.map_base_, nullptr)) {}

PinnedRegion& PinnedRegion::operator=(PinnedRegion&& other) noexcept {
  if (this != &other) {
    reset();
    fixed_ = std::exchange(other.fixed_, false);
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
  if (data_ != nullptr && fixed_) {
    // Back to reserved address space: the pages are released, the range stays ours so
    // no other mapping can land where the pool will map a chunk again.
    if (mmap(data_, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
             0) == MAP_FAILED) {
      (void)munlock(data_, size_);
      (void)madvise(data_, size_, MADV_DONTNEED);
      (void)mprotect(data_, size_, PROT_NONE);
    }
    data_ = nullptr;
    map_base_ = nullptr;
    size_ = map_size_ = 0;
    fixed_ = false;
  } else if (data_ != nullptr) {
    munmap(map_base_ != nullptr ? map_base_ : data_, map_size_);
    data_ = nullptr;
    map_base_ = nullptr;
    size_ = map_size_ = 0;
  }
}

std::expected<VaReservation, Error> VaReservation::create(size_t bytes, size_t align) {
  if (bytes == 0 || bytes % kPageSize != 0 || align == 0 || (align & (align - 1)) != 0 ||
      align % kPageSize != 0) {
    return std::unexpected(Error::bad_config);
  }
  const size_t map_size = bytes + (align > kPageSize ? align : 0);
  void* p = mmap(nullptr, map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return std::unexpected(Error::pin_failed);
  VaReservation r;
  r.map_base_ = static_cast<std::byte*>(p);
  r.map_size_ = map_size;
  const auto addr = reinterpret_cast<uintptr_t>(p);
  r.data_ = r.map_base_ + ((align - addr % align) % align);
  r.size_ = bytes;
  return r;
}

VaReservation::VaReservation(VaReservation&& other) noexcept
    : map_base_(std::exchange(other.map_base_, nullptr)),
      map_size_(std::exchange(other.map_size_, 0)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

VaReservation& VaReservation::operator=(VaReservation&& other) noexcept {
  if (this != &other) {
    if (map_base_ != nullptr) (void)munmap(map_base_, map_size_);
    map_base_ = std::exchange(other.map_base_, nullptr);
    map_size_ = std::exchange(other.map_size_, 0);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

VaReservation::~VaReservation() {
  if (map_base_ != nullptr) (void)munmap(map_base_, map_size_);
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
