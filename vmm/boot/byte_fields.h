// vmm/boot/byte_fields.h — little-endian fields at byte offsets of a boot image or structure.
//
// The loaders read headers out of untrusted files and build boot structures byte by
// byte; these copy a T without alignment assumptions. The caller checks that
// off + sizeof(T) lies inside the span.
//
//   const auto version = get<uint16_t>(image, 0x206);
//   put<uint32_t>(zero_page, 0x228, cmdline_gpa);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace labyrinth::vmm {

template <class T>
T get(std::span<const std::byte> b, uint64_t off) {
  T v{};
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}
template <class T>
void put(std::span<std::byte> b, uint64_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

}  // namespace labyrinth::vmm
