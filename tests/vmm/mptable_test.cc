#include "vmm/boot/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <span>

#include "guest/abi/boot_info.h"
#include "vmm/boot/linux_loader.h"

namespace labyrinth::vmm {
namespace {

unsigned byte_sum(std::span<const std::byte> b) {
  return std::accumulate(b.begin(), b.end(), 0u,
                         [](unsigned a, std::byte x) { return a + std::to_integer<unsigned>(x); }) &
         0xFF;
}
template <class T>
T at(std::span<const std::byte> b, size_t off) {
  T v{};
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

TEST(MpTable, FloatingPointerAndTableAreWellFormed) {
  for (uint32_t cpus : {1u, 2u, LABYRINTH_MAX_VCPUS}) {
    const auto t = make_mptable(kLinuxEbdaGpa, cpus);
    ASSERT_GE(t.size(), 16u + 44u);
    // Linux scans only the last KiB below 640 KiB: the whole table must fit there.
    EXPECT_LE(t.size(), 0xA0000 - kLinuxEbdaGpa) << cpus;
    const std::span<const std::byte> b(t);
    EXPECT_EQ(std::memcmp(t.data(), "_MP_", 4), 0);
    EXPECT_EQ(at<uint32_t>(b, 4), kLinuxEbdaGpa + 16);
    EXPECT_EQ(at<uint8_t>(b, 8), 1);  // length in 16-byte units
    EXPECT_EQ(at<uint8_t>(b, 9), 4);  // MP spec 1.4
    EXPECT_EQ(byte_sum(b.first(16)), 0u);
    const auto table = b.subspan(16);
    EXPECT_EQ(std::memcmp(table.data(), "PCMP", 4), 0);
    EXPECT_EQ(at<uint16_t>(table, 4), table.size());
    EXPECT_EQ(byte_sum(table), 0u);
    EXPECT_EQ(at<uint16_t>(table, 34), cpus + 2 + 1 + kMpIsaIrqs + 2);  // entry count
    EXPECT_EQ(at<uint32_t>(table, 36), LABYRINTH_LAPIC_GPA);
  }
}

TEST(MpTable, ListsEveryCpuTheIoapicAndIsaRouting) {
  const uint32_t cpus = 3;
  const auto t = make_mptable(kLinuxEbdaGpa, cpus);
  const std::span<const std::byte> e = std::span<const std::byte>(t).subspan(16 + 44);
  for (uint32_t i = 0; i < cpus; ++i) {
    const auto cpu = e.subspan(i * 20, 20);
    EXPECT_EQ(at<uint8_t>(cpu, 0), 0);               // processor
    EXPECT_EQ(at<uint8_t>(cpu, 1), i);               // LAPIC ID
    EXPECT_EQ(at<uint8_t>(cpu, 3), i == 0 ? 3 : 1);  // enabled, BSP on CPU 0
  }
  size_t off = cpus * 20;
  EXPECT_EQ(at<uint8_t>(e, off), 1);  // bus 0: PCI
  EXPECT_EQ(std::memcmp(e.data() + off + 2, "PCI   ", 6), 0);
  EXPECT_EQ(std::memcmp(e.data() + off + 10, "ISA   ", 6), 0);
  off += 16;
  EXPECT_EQ(at<uint8_t>(e, off), 2);  // IOAPIC
  EXPECT_EQ(at<uint8_t>(e, off + 1), cpus + 1);
  EXPECT_EQ(at<uint32_t>(e, off + 4), LABYRINTH_IOAPIC_GPA);
  off += 8;
  for (uint32_t irq = 0; irq < kMpIsaIrqs; ++irq, off += 8) {
    EXPECT_EQ(at<uint8_t>(e, off), 3);              // I/O interrupt
    EXPECT_EQ(at<uint8_t>(e, off + 4), kMpBusIsa);  // source bus
    EXPECT_EQ(at<uint8_t>(e, off + 5), irq);        // ISA IRQ
    EXPECT_EQ(at<uint8_t>(e, off + 6), cpus + 1);   // IOAPIC
    EXPECT_EQ(at<uint8_t>(e, off + 7), irq);        // pin
  }
  EXPECT_EQ(at<uint8_t>(e, off), 4);  // ExtINT -> LINT0
  EXPECT_EQ(at<uint8_t>(e, off + 1), 3);
  EXPECT_EQ(at<uint8_t>(e, off + 8 + 1), 1);  // NMI -> LINT1
  EXPECT_EQ(at<uint8_t>(e, off + 8 + 7), 1);
}

}  // namespace
}  // namespace labyrinth::vmm
