// tests/support/bus_access.h — a typed access through a Bus, as a guest's IN/OUT or MMIO
// instruction of sizeof(T) bytes makes one: out() writes v, in() reads (the buffer
// pre-filled with 0xEE, so a device that leaves a byte unwritten shows). Both assert
// that something was mapped at addr.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <span>

#include "devices/bus/bus.h"

namespace labyrinth::devices::test {

template <class T>
void out(Bus& bus, uint64_t addr, T v) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  ASSERT_TRUE(bus.write(addr, std::span<const uint8_t>(b, sizeof(T))));
}

template <class T>
T in(Bus& bus, uint64_t addr) {
  uint8_t b[sizeof(T)];
  std::memset(b, 0xEE, sizeof b);
  EXPECT_TRUE(bus.read(addr, std::span<uint8_t>(b, sizeof(T))));
  T v{};
  std::memcpy(&v, b, sizeof(T));
  return v;
}

}  // namespace labyrinth::devices::test
