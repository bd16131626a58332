#include "devices/legacy/pc_testdev.h"

#include <gtest/gtest.h>

#include <cstring>
#include <utility>
#include <vector>

#include "devices/bus/bus.h"
#include "tests/support/bus_access.h"

namespace labyrinth::devices {
namespace {

using test::in;
using test::out;

// Records what the device asked of the VMM.
struct RecordingHost final : PcTestdevHost {
  void set_irq_level(uint32_t line, bool level) override { levels.emplace_back(line, level); }
  void flush_page(uint64_t gpa) override { flushed.push_back(gpa); }
  std::vector<std::pair<uint32_t, bool>> levels;
  std::vector<uint64_t> flushed;
};

// Drives the device through buses at QEMU's addresses, as a guest's IN/OUT and MMIO do.
class PcTestdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pio_.insert(dev_.ports(), PcTestdev::kPortBase, PcTestdev::kPortLen));
    ASSERT_TRUE(pio_.insert(dev_.irq_lines(), PcTestdev::kIrqBase, PcTestdev::kIrqLen));
    ASSERT_TRUE(mmio_.insert(dev_.iomem(), PcTestdev::kIomemBase, PcTestdev::kIomemLen));
  }
  RecordingHost host_;
  PcTestdev dev_{host_};
  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
};

// x86/emulator.c's test_io: OUTs and INs of each width at 0xE0 see one 32-bit register.
TEST_F(PcTestdevTest, ScratchRegisterKeepsWhatEachWidthWrote) {
  out<uint32_t>(pio_, 0xE0, 0x12345678);
  EXPECT_EQ(in<uint32_t>(pio_, 0xE0), 0x12345678u);
  EXPECT_EQ(in<uint8_t>(pio_, 0xE0), 0x78u);
  EXPECT_EQ(in<uint16_t>(pio_, 0xE2), 0x1234u);
  out<uint8_t>(pio_, 0xE1, 0xAB);  // one byte in the middle
  EXPECT_EQ(in<uint32_t>(pio_, 0xE0), 0x1234AB78u);
  out<uint16_t>(pio_, 0xE0, 0x9999);
  EXPECT_EQ(in<uint32_t>(pio_, 0xE0), 0x12349999u);
}

TEST_F(PcTestdevTest, ByteWiseViewAtE8IsTheSameRegister) {
  out<uint32_t>(pio_, 0xE8, 0xCAFEF00D);
  EXPECT_EQ(in<uint32_t>(pio_, 0xE0), 0xCAFEF00Du);
  out<uint8_t>(pio_, 0xE3, 0x11);
  EXPECT_EQ(in<uint8_t>(pio_, 0xEB), 0x11u);
}

TEST_F(PcTestdevTest, BytesPastTheRegisterAreDroppedAndReadZero) {
  out<uint32_t>(pio_, 0xE0, 0);
  out<uint16_t>(pio_, 0xE3, 0xBBAA);  // 0xE3 is the last register byte; 0xE4 is not one
  EXPECT_EQ(in<uint32_t>(pio_, 0xE0), 0xAA000000u);
  EXPECT_EQ(in<uint16_t>(pio_, 0xE3), 0x00AAu);
  EXPECT_TRUE(host_.flushed.empty()) << "a 16-bit OUT at 0xE3 is no flush request";
  out<uint16_t>(pio_, 0xE9, 0x2211);  // the byte-wise view, starting mid-register
  EXPECT_EQ(in<uint32_t>(pio_, 0xE8), 0xAA221100u);
}

// x86/eventinj.c: outl(addr, 0xe4) drops the page's mapping.
TEST_F(PcTestdevTest, FlushTakesA32BitAddressAndPassesItsPage) {
  out<uint32_t>(pio_, 0xE4, 0x00123ABC);
  ASSERT_EQ(host_.flushed.size(), 1u);
  EXPECT_EQ(host_.flushed[0], 0x123000u);
  out<uint16_t>(pio_, 0xE4, 0x1000);  // QEMU takes 32-bit writes only
  out<uint8_t>(pio_, 0xE5, 0x10);
  out<uint32_t>(pio_, 0xE5 - 1, 0xFFFFFFFF);
  ASSERT_EQ(host_.flushed.size(), 2u);
  EXPECT_EQ(host_.flushed[1], 0xFFFFF000u);
  EXPECT_EQ(in<uint32_t>(pio_, 0xE4), 0u);
}

// x86/ioapic.c's set_irq_line(line, v): outb(v, 0x2000 + line) sets a level.
TEST_F(PcTestdevTest, IrqLinesSetLevelsOnTheirGsi) {
  out<uint8_t>(pio_, 0x2000 + 0x0E, 1);
  out<uint8_t>(pio_, 0x2000 + 0x0E, 0);
  out<uint8_t>(pio_, 0x2000 + 23, 0x80);  // any non-zero byte raises
  const std::vector<std::pair<uint32_t, bool>> want = {{14, true}, {14, false}, {23, true}};
  EXPECT_EQ(host_.levels, want);
}

TEST_F(PcTestdevTest, IrqLinesIgnoreWideWritesAndStopAtLine23) {
  out<uint16_t>(pio_, 0x2000, 0x0101);
  out<uint32_t>(pio_, 0x2004, 1);
  EXPECT_TRUE(host_.levels.empty());
  uint8_t one = 1;
  EXPECT_FALSE(pio_.write(0x2000 + 24, std::span<const uint8_t>(&one, 1))) << "no line 24";
  EXPECT_TRUE(host_.levels.empty());
}

TEST_F(PcTestdevTest, IomemReturnsWhatWasWrittenAtEveryWidth) {
  EXPECT_EQ(in<uint64_t>(mmio_, PcTestdev::kIomemBase), 0u);
  out<uint64_t>(mmio_, PcTestdev::kIomemBase + 8, 0x1122334455667788);
  EXPECT_EQ(in<uint32_t>(mmio_, PcTestdev::kIomemBase + 12), 0x11223344u);
  // x86/emulator.c's cross-page test: the last byte of the first page, the first of the next.
  out<uint16_t>(mmio_, PcTestdev::kIomemBase + 4095, 0x88AA);
  EXPECT_EQ(in<uint8_t>(mmio_, PcTestdev::kIomemBase + 4095), 0xAAu);
  EXPECT_EQ(in<uint8_t>(mmio_, PcTestdev::kIomemBase + 4096), 0x88u);
  out<uint64_t>(mmio_, PcTestdev::kIomemBase + PcTestdev::kIomemLen - 8, ~uint64_t{0});
  EXPECT_EQ(in<uint64_t>(mmio_, PcTestdev::kIomemBase + PcTestdev::kIomemLen - 8), ~uint64_t{0});
}

TEST_F(PcTestdevTest, IomemAccessRunningOffItsEndIsUnmapped) {
  uint8_t b[8] = {};
  EXPECT_FALSE(mmio_.read(PcTestdev::kIomemBase + PcTestdev::kIomemLen - 4, b));
  EXPECT_FALSE(mmio_.write(PcTestdev::kIomemBase + PcTestdev::kIomemLen - 4, b));
  // The device itself refuses an offset past its end, were a caller to bypass the bus.
  PcTestdevIomem mem;
  mem.write(PcTestdevIomem::kLen, b);
  mem.read(PcTestdevIomem::kLen + 100, b);
  uint8_t last[2] = {0x5A, 0x5B};
  mem.write(PcTestdevIomem::kLen - 1, last);  // only the byte inside is kept
  uint8_t got[1] = {};
  mem.read(PcTestdevIomem::kLen - 1, got);
  EXPECT_EQ(got[0], 0x5Au);
}

}  // namespace
}  // namespace labyrinth::devices
