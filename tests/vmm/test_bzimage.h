// tests/vmm/test_bzimage.h — a crafted bzImage (a setup header and a payload) for loader tests.
//
//   TestBzImage k;                 // protocol 2.15, relocatable, 2 MiB aligned, 16 MiB pref
//   k.set<uint16_t>(0x206, 0x020A);  // corrupt any header field
//   std::vector<std::byte> bytes = k.bytes();
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace labyrinth::testing {

struct TestBzImage {
  static constexpr uint64_t kSetupSects = 3;  // setup = 4 sectors = 2 KiB
  static constexpr uint64_t kSetupBytes = (kSetupSects + 1) * 512;
  static constexpr uint64_t kPayloadBytes = 64 * 1024;
  static constexpr uint64_t kPref = 0x1000000;
  static constexpr uint32_t kInitSize = 0x400000;

  std::vector<std::byte> image;

  TestBzImage() : image(kSetupBytes + kPayloadBytes, std::byte{0}) {
    image[0x1F1] = std::byte{kSetupSects};
    set<uint32_t>(0x1F4, kPayloadBytes / 16);  // syssize
    set<uint16_t>(0x1FE, 0xAA55);
    image[0x200] = std::byte{0xEB};  // jmp short: the header ends at 0x202 + 0x6A = 0x26C
    image[0x201] = std::byte{0x6A};
    std::memcpy(image.data() + 0x202, "HdrS", 4);
    set<uint16_t>(0x206, 0x020F);
    image[0x211] = std::byte{0x01};  // LOADED_HIGH
    set<uint32_t>(0x22C, 0x7FFFFFFF);
    set<uint32_t>(0x230, 0x200000);
    image[0x234] = std::byte{1};  // relocatable
    set<uint16_t>(0x236, 0x7F);   // xloadflags: XLF_KERNEL_64 and friends
    set<uint32_t>(0x238, 255);    // cmdline_size
    set<uint64_t>(0x258, kPref);
    set<uint32_t>(0x260, kInitSize);
    for (uint64_t i = 0; i < kPayloadBytes; ++i) {
      image[kSetupBytes + i] = std::byte{static_cast<uint8_t>(i * 7 + 1)};
    }
  }
  template <class T>
  void set(uint64_t off, T v) {
    std::memcpy(image.data() + off, &v, sizeof(T));
  }
  const std::vector<std::byte>& bytes() const { return image; }
  void write_to(const std::string& path) const {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(image.data()),
               static_cast<std::streamsize>(image.size()));
  }
};

}  // namespace labyrinth::testing
