// vmm/file_bytes.h — a file's bytes as read_file (boot/elf_loader.h) returns them.
//
// Growing a FileBytes leaves its new bytes uninitialised, since read_file overwrites them
// at once: a 66 MB vmlinux is not zeroed first only to be read over, a whole pass over its
// memory (measured in the TCG test VM: docs/linux.md, "Session 16").
//
//   FileBytes buf(size);                   // size bytes, not zeroed
//   std::span<const std::byte> s = buf;    // what the loaders take
#pragma once

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

namespace labyrinth::vmm {

template <class T>
struct OverwriteAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = OverwriteAllocator<U>;
  };
  OverwriteAllocator() = default;
  template <class U>
  explicit OverwriteAllocator(const OverwriteAllocator<U>& /*other*/) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialised: left as it is
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

using FileBytes = std::vector<std::byte, OverwriteAllocator<std::byte>>;

}  // namespace labyrinth::vmm
