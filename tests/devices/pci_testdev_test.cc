#include "devices/pci/pci_testdev.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"
#include "tests/support/bus_access.h"

namespace labyrinth::devices {
namespace {

using test::in;
using test::out;

// The device on a PCI bus and its BARs on MMIO and PIO buses, driven as a guest's IN/OUT
// and MMIO accesses do (kvm-unit-tests' lib/x86/asm/pci.h: mechanism 1 at 0xCF8/0xCFC).
class PciTestdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pci_->insert(PciTestdev::kSlot, dev_->function()));
    ASSERT_TRUE(pio_.insert(pci_, PciBus::kBase, PciBus::kLen));
    ASSERT_TRUE(mmio_.insert(dev_->mem_bar(), PciTestdev::kMemBar, PciTestdev::kMemLen));
    ASSERT_TRUE(pio_.insert(dev_->io_bar(), PciTestdev::kIoBar, PciTestdev::kIoLen));
  }
  template <class T>
  T config_read(uint8_t reg, uint32_t slot = PciTestdev::kSlot) {
    out<uint32_t>(pio_, 0xCF8, PciBus::kEnable | slot << 11 | reg);
    return in<T>(pio_, 0xCFC);
  }
  void config_write(uint8_t reg, uint32_t v) {
    out<uint32_t>(pio_, 0xCF8, PciBus::kEnable | PciTestdev::kSlot << 11 | reg);
    out<uint32_t>(pio_, 0xCFC, v);
  }
  Bus& bus_of(bool io) { return io ? pio_ : mmio_; }
  uint64_t base_of(bool io) { return io ? PciTestdev::kIoBar : PciTestdev::kMemBar; }

  // lib/pci-testdev.c's pci_testdev_one: select test n, check it, write 16 times, and
  // return the name when count is 0 or 16 ("" when the test does not exist or fails).
  std::string run_test(bool io, uint8_t n) {
    Bus& bus = bus_of(io);
    const uint64_t base = base_of(io);
    out<uint8_t>(bus, base + PciTestdev::kTestOff, n);
    if (in<uint32_t>(bus, base + PciTestdev::kCountOff) != 0) return "";
    const uint8_t width = in<uint8_t>(bus, base + PciTestdev::kWidthOff);
    if (width != 1) return "";
    const uint32_t sig = in<uint32_t>(bus, base + PciTestdev::kDataOff);
    const uint32_t off = in<uint32_t>(bus, base + PciTestdev::kOffsetOff);
    for (int i = 0; i < 16; ++i) out<uint8_t>(bus, base + off, static_cast<uint8_t>(sig));
    const uint32_t count = in<uint32_t>(bus, base + PciTestdev::kCountOff);
    if (count != 0 && count != 16) return "";
    std::string name;
    for (uint64_t i = 0;; ++i) {
      const char c = static_cast<char>(in<uint8_t>(bus, base + PciTestdev::kNameOff + i));
      if (c == 0) break;
      name += c;
    }
    return name;
  }

  std::shared_ptr<PciTestdev> dev_ = std::make_shared<PciTestdev>();
  std::shared_ptr<PciBus> pci_ = std::make_shared<PciBus>();
  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
};

TEST_F(PciTestdevTest, ConfigSpaceIsQemusTestDeviceWithAMemoryAndAnIoBar) {
  // pci_find_dev reads the IDs as 16-bit words.
  EXPECT_EQ(config_read<uint16_t>(0x00), 0x1B36u);
  EXPECT_EQ(config_read<uint16_t>(0x02), 0x0005u);
  EXPECT_EQ(config_read<uint32_t>(0x08), 0xFF000000u);              // class "other", revision 0
  EXPECT_EQ(config_read<uint32_t>(0x0C), 0u);                       // header type 0
  EXPECT_EQ(config_read<uint32_t>(0x10), PciTestdev::kMemBar);      // memory, 32-bit
  EXPECT_EQ(config_read<uint32_t>(0x14), PciTestdev::kIoBar | 1u);  // I/O space bit
  for (uint8_t bar = 0x18; bar <= 0x24; bar += 4) EXPECT_EQ(config_read<uint32_t>(bar), 0u);
  EXPECT_EQ(config_read<uint8_t>(0x3D), 0u);   // no interrupt pin
  EXPECT_EQ(config_read<uint32_t>(0x34), 0u);  // no capabilities
  // Its function 1 and its neighbour slots are empty.
  out<uint32_t>(pio_, 0xCF8, PciBus::kEnable | PciTestdev::kSlot << 11 | 1u << 8);
  EXPECT_EQ(in<uint32_t>(pio_, 0xCFC), 0xFFFFFFFFu);
  EXPECT_EQ(config_read<uint32_t>(0, PciTestdev::kSlot + 1), 0xFFFFFFFFu);
}

// lib/pci.c's pci_bar_size_helper: save, write all-ones, read the mask, write back.
TEST_F(PciTestdevTest, BarSizeProbeIsAnsweredAndTheBarsDoNotMove) {
  config_write(0x10, 0xFFFFFFFFu);
  EXPECT_EQ(config_read<uint32_t>(0x10), 0xFFFFF000u);  // 4 KiB
  config_write(0x10, PciTestdev::kMemBar);
  EXPECT_EQ(config_read<uint32_t>(0x10), PciTestdev::kMemBar);
  config_write(0x14, 0xFFFFFFFFu);
  EXPECT_EQ(config_read<uint32_t>(0x14), 0xFFFFFF01u);  // 256 ports, I/O
  config_write(0x14, PciTestdev::kIoBar | 1u);
  EXPECT_EQ(config_read<uint32_t>(0x14), PciTestdev::kIoBar | 1u);
  // A guest that tries to move a BAR, or writes an unused one, changes nothing.
  config_write(0x10, 0xE0000000u);
  EXPECT_EQ(config_read<uint32_t>(0x10), PciTestdev::kMemBar);
  config_write(0x18, 0xFFFFFFFFu);
  EXPECT_EQ(config_read<uint32_t>(0x18), 0u);  // size 0: the suite sees no BAR2
  config_write(0x00, 0x12345678u);             // read-only IDs
  EXPECT_EQ(config_read<uint32_t>(0x00), 0x00051B36u);
  config_write(0x04, 0xFFFFFFFFu);  // command keeps I/O, memory and bus master only
  EXPECT_EQ(config_read<uint32_t>(0x04), 0x7u);
}

// What lib/pci-testdev.c's pci_testdev() finds: three tests on each BAR, QEMU's names.
TEST_F(PciTestdevTest, TheSuitesWalkFindsThreeTestsOnEachBar) {
  const char* mem[] = {"mmio-no-eventfd", "mmio-wildcard-eventfd", "mmio-datamatch-eventfd"};
  const char* io[] = {"portio-no-eventfd", "portio-wildcard-eventfd", "portio-datamatch-eventfd"};
  for (uint8_t n = 0; n < 3; ++n) {
    EXPECT_EQ(run_test(false, n), mem[n]);
    EXPECT_EQ(run_test(true, n), io[n]);
  }
  // The walk stops at test 3: width reads 0.
  EXPECT_EQ(run_test(false, 3), "");
  EXPECT_EQ(in<uint8_t>(mmio_, PciTestdev::kMemBar + PciTestdev::kWidthOff), 0u);
}

TEST_F(PciTestdevTest, HeaderTellsWhereAndWhatToWriteAndCountsIt) {
  const uint64_t mem = PciTestdev::kMemBar;
  out<uint8_t>(mmio_, mem, 2);  // mmio-datamatch-eventfd
  EXPECT_EQ(in<uint8_t>(mmio_, mem + PciTestdev::kTestOff), 2u);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kOffsetOff), 0x800u + 2);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kDataOff), uint32_t{PciTestdev::kDataMatch});
  out<uint8_t>(mmio_, mem + 0x802, PciTestdev::kDataMatch);
  out<uint8_t>(mmio_, mem + 0x802, 0x11);                    // another value: not counted
  out<uint8_t>(mmio_, mem + 0x801, PciTestdev::kDataMatch);  // another offset: not counted
  // A wider access is taken a byte at a time: only its first byte lands on the offset.
  out<uint32_t>(mmio_, mem + 0x802, 0x000000FAu);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kCountOff), 2u);
  // The wildcard test counts any value; its data reads QEMU's "no match" 0xCE.
  out<uint8_t>(pio_, PciTestdev::kIoBar, 1);  // portio-wildcard-eventfd
  EXPECT_EQ(in<uint32_t>(pio_, PciTestdev::kIoBar + PciTestdev::kOffsetOff), 0x80u + 4);
  EXPECT_EQ(in<uint8_t>(pio_, PciTestdev::kIoBar + PciTestdev::kDataOff), PciTestdev::kNoMatch);
  out<uint8_t>(pio_, PciTestdev::kIoBar + 0x84, 0x00);
  out<uint8_t>(pio_, PciTestdev::kIoBar + 0x84, 0x77);
  EXPECT_EQ(in<uint32_t>(pio_, PciTestdev::kIoBar + PciTestdev::kCountOff), 2u);
  // Selecting again starts from 0.
  out<uint8_t>(pio_, PciTestdev::kIoBar, 1);
  EXPECT_EQ(in<uint32_t>(pio_, PciTestdev::kIoBar + PciTestdev::kCountOff), 0u);
}

// Bad input: a test kernel may read and write anywhere in the BARs, at any width.
TEST_F(PciTestdevTest, StrayAccessesReadZeroAndCountNothing) {
  const uint64_t mem = PciTestdev::kMemBar, io = PciTestdev::kIoBar;
  // No test selected: the whole BAR reads 0, writes are ignored.
  EXPECT_EQ(in<uint64_t>(mmio_, mem), 0u);
  EXPECT_EQ(in<uint64_t>(mmio_, mem + PciTestdev::kMemLen - 8), 0u);
  out<uint8_t>(mmio_, mem + 0x800, PciTestdev::kDataMatch);
  // An unknown test number deselects: 3, 0xFF.
  out<uint8_t>(mmio_, mem, 0);
  out<uint8_t>(mmio_, mem, 0xFF);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kWidthOff), 0u);
  // Past the name (and at the BAR's last bytes) reads 0 with a test selected.
  out<uint8_t>(mmio_, mem, 0);
  EXPECT_EQ(in<uint64_t>(mmio_, mem + PciTestdev::kNameOff + 15), 0u);  // "mmio-no-eventfd"
  EXPECT_EQ(in<uint64_t>(mmio_, mem + PciTestdev::kMemLen - 8), 0u);
  EXPECT_EQ(in<uint32_t>(pio_, io + PciTestdev::kIoLen - 4), 0u);
  // A write to the header's read-only fields changes nothing.
  out<uint32_t>(mmio_, mem + PciTestdev::kCountOff, 0x12345678u);
  out<uint32_t>(mmio_, mem + PciTestdev::kOffsetOff, 0x4u);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kCountOff), 0u);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kOffsetOff), 0x800u);
  // The other BAR's test offset does not count for an mmio test (portio-no-eventfd's 0x83).
  out<uint8_t>(pio_, io + 0x83, PciTestdev::kDataMatch);
  out<uint8_t>(mmio_, mem + 0x83, PciTestdev::kDataMatch);
  EXPECT_EQ(in<uint32_t>(mmio_, mem + PciTestdev::kCountOff), 0u);
  // An access running off a BAR's end is the bus's: unmapped, the device is not called.
  uint8_t b[8] = {};
  EXPECT_FALSE(mmio_.read(mem + PciTestdev::kMemLen - 4, b));
  EXPECT_FALSE(pio_.write(io + PciTestdev::kIoLen - 2, std::span<const uint8_t>(b, 4)));
}

// Were a caller to bypass the bus, the device itself keeps every access inside its BAR.
TEST_F(PciTestdevTest, OffsetsPastTheBarAreRefusedByTheDeviceItself) {
  uint8_t b[8];
  std::memset(b, 0xEE, sizeof b);
  dev_->bar_read(PciTestdev::Space::io, PciTestdev::kIoLen + 100, b);
  for (uint8_t v : b) EXPECT_EQ(v, 0u);
  dev_->bar_read(PciTestdev::Space::mem, ~uint64_t{0} - 2, b);  // offset + size wraps
  for (uint8_t v : b) EXPECT_EQ(v, 0u);
  // A write straddling the end keeps only what is inside: here a test selection at 0 is
  // never reached from an offset past the end, and nothing is counted.
  const uint8_t sel[2] = {0, 0};
  dev_->bar_write(PciTestdev::Space::mem, PciTestdev::kMemLen - 1, sel);
  dev_->bar_write(PciTestdev::Space::mem, ~uint64_t{0}, sel);
  EXPECT_EQ(in<uint8_t>(mmio_, PciTestdev::kMemBar + PciTestdev::kWidthOff), 0u);  // none
}

}  // namespace
}  // namespace labyrinth::devices
