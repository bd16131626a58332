#include "devices/pci/pci_bus.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace labyrinth::devices {
namespace {

uint32_t address(uint32_t bus, uint32_t slot, uint32_t fn, uint32_t reg) {
  return PciBus::kEnable | bus << 16 | slot << 11 | fn << 8 | reg;
}
void outl(PciBus& pci, uint64_t off, uint32_t v) {
  pci.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
}
uint32_t in(PciBus& pci, uint64_t off, size_t width) {
  uint32_t v = 0;
  pci.read(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), width));
  return v;
}
uint32_t config(PciBus& pci, uint32_t slot, uint32_t reg, size_t width = 4) {
  outl(pci, 0, address(0, slot, 0, reg & 0xFC));
  return in(pci, 4 + (reg & 3), width);
}

// Records the config writes it sees.
struct FakeFunction final : PciFunction {
  std::string_view label() const override { return "fake"; }
  uint32_t read_config(uint8_t offset) override {
    return offset == 0 ? 0x10001AF4u : (offset == 0x10 ? bar : 0);
  }
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override {
    writes.push_back({offset, value, mask});
    if (offset == 0x10) bar = (bar & ~mask) | (value & mask);
  }
  struct Write {
    uint8_t offset;
    uint32_t value, mask;
  };
  std::vector<Write> writes;
  uint32_t bar = 0;
};

TEST(PciBus, Mechanism1ProbeSeesTheHostBridge) {
  PciBus pci;
  // Linux's pci_check_type1: a byte to 0xCFB, then CONFIG_ADDRESS must read back.
  const uint8_t one = 1;
  pci.write(3, std::span<const uint8_t>(&one, 1));
  outl(pci, 0, 0x80000000u);
  EXPECT_EQ(in(pci, 0, 4), 0x80000000u);
  // pci_sanity_check: the class of 00:00.0 is a host bridge.
  EXPECT_EQ(config(pci, 0, 0x00), 0x0D578086u);
  EXPECT_EQ(config(pci, 0, 0x0A, 2), 0x0600u);
  EXPECT_EQ(config(pci, 0, 0x0E, 1), 0x00u) << "header type 0, single function";
}

TEST(PciBus, AbsentDevicesFunctionsAndBusesReadAllOnes) {
  PciBus pci;
  EXPECT_EQ(config(pci, 5, 0), 0xFFFFFFFFu);
  outl(pci, 0, address(0, 0, 1, 0));  // function 1 of the host bridge
  EXPECT_EQ(in(pci, 4, 4), 0xFFFFFFFFu);
  outl(pci, 0, address(1, 0, 0, 0));  // bus 1
  EXPECT_EQ(in(pci, 4, 4), 0xFFFFFFFFu);
  outl(pci, 0, 0x00000000u);  // enable bit clear
  EXPECT_EQ(in(pci, 4, 4), 0xFFFFFFFFu);
  outl(pci, 0, address(0, 0, 0, 0));
  EXPECT_EQ(in(pci, 6, 4), 0xFFFFFFFFu) << "an access past 0xCFF";
}

TEST(PciBus, InsertedFunctionGetsSubDwordWritesWithMasks) {
  PciBus pci;
  auto fn = std::make_shared<FakeFunction>();
  ASSERT_TRUE(pci.insert(3, fn).has_value());
  EXPECT_FALSE(pci.insert(3, fn).has_value());
  EXPECT_FALSE(pci.insert(0, fn).has_value()) << "the host bridge's slot";
  EXPECT_FALSE(pci.insert(32, fn).has_value());
  EXPECT_EQ(config(pci, 3, 0x02, 2), 0x1000u);  // device ID
  outl(pci, 0, address(0, 3, 0, 0x10));
  const uint16_t half = 0xBEEF;
  pci.write(6, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&half), 2));
  ASSERT_EQ(fn->writes.size(), 1u);
  EXPECT_EQ(fn->writes[0].offset, 0x10);
  EXPECT_EQ(fn->writes[0].value, 0xBEEF0000u);
  EXPECT_EQ(fn->writes[0].mask, 0xFFFF0000u);
  EXPECT_EQ(config(pci, 3, 0x10), 0xBEEF0000u);
  // Writes to the host bridge are ignored.
  outl(pci, 0, address(0, 0, 0, 0));
  outl(pci, 4, 0x12345678u);
  EXPECT_EQ(config(pci, 0, 0), 0x0D578086u);
}

// kvm-unit-tests' pci_config_readw(dev, 2): CONFIG_ADDRESS | 2, then a 16-bit read of
// 0xCFC. As in QEMU the low bits select the byte; the address still reads back without
// them, and an access they push past the dword reads all-ones and writes nothing.
TEST(PciBus, LowAddressBitsOffsetTheDataPortAsInQemu) {
  PciBus pci;
  auto fn = std::make_shared<FakeFunction>();
  ASSERT_TRUE(pci.insert(5, fn));
  outl(pci, 0, address(0, 5, 0, 0) | 2);
  EXPECT_EQ(in(pci, 0, 4), address(0, 5, 0, 0));
  EXPECT_EQ(in(pci, 4, 2), 0x1000u);  // the device ID half of 0x10001AF4
  EXPECT_EQ(in(pci, 5, 1), 0x10u);
  EXPECT_EQ(in(pci, 4, 4), 0xFFFFFFFFu);  // bytes 2..5: past the dword
  outl(pci, 0, address(0, 5, 0, 0x10) | 1);
  const uint8_t b = 0xAB;
  pci.write(4, std::span<const uint8_t>(&b, 1));  // byte 1 of the BAR
  ASSERT_EQ(fn->writes.size(), 1u);
  EXPECT_EQ(fn->writes[0].mask, 0x0000FF00u);
  EXPECT_EQ(fn->writes[0].value, 0x0000AB00u);
  outl(pci, 4, 0x12345678u);  // would run past the dword: dropped
  EXPECT_EQ(fn->writes.size(), 1u);
}

}  // namespace
}  // namespace labyrinth::devices
