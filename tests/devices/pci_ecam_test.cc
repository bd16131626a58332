// ECAM (devices/pci/pci_ecam.h): the window's decode, and that it reaches the very
// registers configuration mechanism 1 reaches, whatever offset and size a guest uses.
#include "devices/pci/pci_ecam.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/support/bus_access.h"

namespace labyrinth::devices {
namespace {

using test::in;
using test::out;

constexpr uint64_t kBase = 0xC0000000;  // where the machine maps it (vmm/boot/acpi.h)

uint64_t ecam(uint32_t slot, uint32_t function, uint32_t reg) {
  return kBase + (uint64_t{slot} << 15 | uint64_t{function} << 12 | reg);
}

// A function with a writable 256-byte space that records the dword writes it gets.
struct SpaceFunction final : PciFunction {
  std::string_view label() const override { return "space"; }
  uint32_t read_config(uint8_t offset) override {
    EXPECT_EQ(offset % 4, 0) << "read_config off a dword";
    return space[offset / 4];
  }
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override {
    EXPECT_EQ(offset % 4, 0) << "write_config off a dword";
    writes.push_back({offset, value, mask});
    space[offset / 4] = (space[offset / 4] & ~mask) | (value & mask);
  }
  struct Write {
    uint8_t offset;
    uint32_t value, mask;
  };
  std::array<uint32_t, 64> space{};
  std::vector<Write> writes;
};

// A machine's two front ends on one PciBus: ports 0xCF8-0xCFF and the ECAM window.
class PciEcamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fn_->space[0] = 0x10001AF4u;
    ASSERT_TRUE(pci_->insert(3, fn_));
    ASSERT_TRUE(pio_.insert(pci_, PciBus::kBase, PciBus::kLen));
    ASSERT_TRUE(mmio_.insert(std::make_shared<PciEcam>(pci_), kBase, PciEcam::kLen));
  }
  // Configuration mechanism 1, as Linux's pci_conf1_read does it.
  uint32_t cam1(uint32_t slot, uint32_t reg) {
    out<uint32_t>(pio_, 0xCF8, PciBus::kEnable | slot << 11 | (reg & 0xFC));
    return in<uint32_t>(pio_, 0xCFC);
  }

  std::shared_ptr<PciBus> pci_ = std::make_shared<PciBus>();
  std::shared_ptr<SpaceFunction> fn_ = std::make_shared<SpaceFunction>();
  Bus pio_{"pio"}, mmio_{"mmio"};
};

TEST(PciEcam, DecodesBusDeviceFunctionAndRegister) {
  static_assert(PciEcam::kLen == 1u << 20, "bus 0: 32 devices x 8 functions x 4 KiB");
  const auto a = PciEcam::decode(0xF'FFFF);
  EXPECT_EQ(a.bus, 0u);
  EXPECT_EQ(a.slot, 31u);
  EXPECT_EQ(a.function, 7u);
  EXPECT_EQ(a.offset, 0xFFFu);
  const auto b = PciEcam::decode(3u << 15 | 2u << 12 | 0x10C);
  EXPECT_EQ(b.slot, 3u);
  EXPECT_EQ(b.function, 2u);
  EXPECT_EQ(b.offset, 0x10Cu);
  EXPECT_EQ(PciEcam::decode(1u << 20).bus, 1u);
  EXPECT_NE(PciEcam::decode(uint64_t{1} << 40).bus, 0u) << "high bits never alias bus 0";
}

TEST_F(PciEcamTest, ReadsTheSameRegistersAsMechanism1) {
  // The host bridge, which Linux's pci_mmcfg checks read first.
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(0, 0, 0)), 0x0D578086u);
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(0, 0, 0)), cam1(0, 0));
  EXPECT_EQ(in<uint16_t>(mmio_, ecam(0, 0, 0x0A)), 0x0600u) << "class: host bridge";
  EXPECT_EQ(in<uint8_t>(mmio_, ecam(0, 0, 0x0E)), 0x00u) << "header type 0";
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, 0)), 0x10001AF4u);
  EXPECT_EQ(in<uint16_t>(mmio_, ecam(3, 0, 2)), 0x1000u);
  EXPECT_EQ(in<uint8_t>(mmio_, ecam(3, 0, 1)), 0x1Au);
  EXPECT_EQ(in<uint8_t>(mmio_, ecam(3, 0, 3)), 0x10u);
}

TEST_F(PciEcamTest, WritesReachTheOneConfigSpaceWithTheirByteMask) {
  out<uint16_t>(mmio_, ecam(3, 0, 0x12), 0xBEEF);
  ASSERT_EQ(fn_->writes.size(), 1u);
  EXPECT_EQ(fn_->writes[0].offset, 0x10);
  EXPECT_EQ(fn_->writes[0].value, 0xBEEF0000u);
  EXPECT_EQ(fn_->writes[0].mask, 0xFFFF0000u);
  EXPECT_EQ(cam1(3, 0x10), 0xBEEF0000u) << "seen through 0xCFC";
  out<uint8_t>(mmio_, ecam(3, 0, 0x11), 0xAB);
  EXPECT_EQ(fn_->writes.back().mask, 0x0000FF00u);
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, 0x10)), 0xBEEFAB00u);
  // And the other way round: a mechanism 1 write is read back through ECAM.
  out<uint32_t>(pio_, 0xCF8, PciBus::kEnable | 3u << 11 | 0x3C);
  out<uint32_t>(pio_, 0xCFC, 0x12345678u);
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, 0x3C)), 0x12345678u);
  // ECAM leaves CONFIG_ADDRESS alone.
  EXPECT_EQ(in<uint32_t>(pio_, 0xCF8), PciBus::kEnable | 3u << 11 | 0x3C);
  // Writes to the host bridge are ignored, as through 0xCFC.
  out<uint32_t>(mmio_, ecam(0, 0, 0), 0);
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(0, 0, 0)), 0x0D578086u);
}

// A conventional PCI function has no extended space: offsets 256..4095 read all-ones
// (Linux's pci_cfg_space_size_ext: "no extended configuration space") and take no writes.
TEST_F(PciEcamTest, ExtendedSpaceReadsAllOnesAndIgnoresWrites) {
  for (uint32_t reg : {0x100u, 0x104u, 0x7FCu, 0xFFCu}) {
    EXPECT_EQ(in<uint32_t>(mmio_, ecam(0, 0, reg)), 0xFFFFFFFFu) << reg;
    EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, reg)), 0xFFFFFFFFu) << reg;
    out<uint32_t>(mmio_, ecam(3, 0, reg), 0);
  }
  EXPECT_EQ(in<uint8_t>(mmio_, ecam(3, 0, 0xFFF)), 0xFFu);
  out<uint8_t>(mmio_, ecam(3, 0, 0x100), 0);
  EXPECT_TRUE(fn_->writes.empty()) << "offset 0x100 must not wrap to 0x00";
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, 0)), 0x10001AF4u);
}

TEST_F(PciEcamTest, AbsentDevicesAndFunctionsReadAllOnesAndTakeNoWrites) {
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(5, 0, 0)), 0xFFFFFFFFu);
  EXPECT_EQ(in<uint16_t>(mmio_, ecam(31, 7, 0)), 0xFFFFu);
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 1, 0)), 0xFFFFFFFFu) << "function 1 of slot 3";
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(0, 1, 0)), 0xFFFFFFFFu);
  out<uint32_t>(mmio_, ecam(3, 1, 0x10), 0x1234);
  out<uint32_t>(mmio_, ecam(3, 7, 0x10), 0x1234);
  EXPECT_TRUE(fn_->writes.empty());
}

// Accesses no dword accessor can serve — across a dword, wider than one — read all-ones
// and write nothing; the window's last byte is still served, the byte after is not ours.
TEST_F(PciEcamTest, AccessesAcrossADwordReadAllOnesAndWriteNothing) {
  EXPECT_EQ(in<uint32_t>(mmio_, ecam(3, 0, 2)), 0xFFFFFFFFu);
  EXPECT_EQ(in<uint16_t>(mmio_, ecam(3, 0, 3)), 0xFFFFu);
  EXPECT_EQ(in<uint64_t>(mmio_, ecam(3, 0, 0)), ~uint64_t{0}) << "a movq";
  out<uint32_t>(mmio_, ecam(3, 0, 0x11), 0xFFFFFFFFu);
  out<uint16_t>(mmio_, ecam(3, 0, 0x13), 0xFFFF);
  out<uint64_t>(mmio_, ecam(3, 0, 0x10), ~uint64_t{0});
  // A 3-byte access inside a dword is whole: served.
  std::array<uint8_t, 3> three{};
  ASSERT_TRUE(mmio_.read(ecam(3, 0, 0), three));
  EXPECT_EQ(three, (std::array<uint8_t, 3>{0xF4, 0x1A, 0x00}));
  EXPECT_TRUE(fn_->writes.empty());
  EXPECT_EQ(in<uint8_t>(mmio_, kBase + PciEcam::kLen - 1), 0xFFu);
  std::array<uint8_t, 4> past{};
  EXPECT_FALSE(mmio_.read(kBase + PciEcam::kLen - 2, past)) << "runs past the window";
  // Direct calls with sizes the Bus never makes: empty and wider than 8 bytes.
  std::array<uint8_t, 16> wide{};
  pci_->config_read({.slot = 3, .offset = 0}, std::span<uint8_t>(wide.data(), 0));
  pci_->config_read({.slot = 3, .offset = 0}, wide);
  for (const uint8_t b : wide) EXPECT_EQ(b, 0xFF);
  pci_->config_write({.slot = 3, .offset = 0}, std::span<const uint8_t>(wide.data(), 0));
  pci_->config_write({.slot = 3, .offset = 0}, wide);
  pci_->config_write({.bus = 0x100, .slot = 3, .offset = 0x10}, std::span(wide).first(4));
  pci_->config_write({.slot = 32, .offset = 0x10}, std::span(wide).first(4));
  EXPECT_TRUE(fn_->writes.empty());
}

// Every offset of a present function and an absent one, every size 1..8: ECAM agrees
// with a model of the 256-byte space that mechanism 1 also reads.
TEST_F(PciEcamTest, EveryOffsetAndSizeMatchesTheModel) {
  for (uint32_t v = 0; v < 64; ++v) fn_->space[v] = v * 0x01010101u ^ 0xA5C3u;
  const auto model = [&](uint32_t function, uint32_t reg, size_t size) {
    std::array<uint8_t, 8> want{};
    want.fill(0xFF);
    if (function == 0 && reg < 256 && (reg & 3) + size <= 4) {
      const uint32_t d = fn_->space[reg / 4];
      for (size_t i = 0; i < size; ++i) want[i] = static_cast<uint8_t>(d >> (8 * ((reg & 3) + i)));
    }
    return want;
  };
  for (uint32_t function : {0u, 1u}) {
    for (uint32_t reg = 0; reg < 4096; ++reg) {
      for (size_t size = 1; size <= 8; ++size) {
        std::array<uint8_t, 8> got{};
        ASSERT_TRUE(mmio_.read(ecam(3, function, reg), std::span(got).first(size)));
        const auto want = model(function, reg, size);
        ASSERT_EQ(std::memcmp(got.data(), want.data(), size), 0)
            << "function " << function << " reg " << reg << " size " << size;
      }
    }
  }
  for (uint32_t reg = 0; reg < 256; reg += 4) {
    ASSERT_EQ(cam1(3, reg), fn_->space[reg / 4]) << reg;
  }
}

}  // namespace
}  // namespace labyrinth::devices
