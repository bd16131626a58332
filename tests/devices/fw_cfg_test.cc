#include "devices/legacy/fw_cfg.h"

#include <gtest/gtest.h>

#include <string>

#include "devices/bus/bus.h"
#include "guest/abi/ports.h"

namespace labyrinth::devices {
namespace {

// Drives the device through a Bus at its ports, as a guest's IN/OUT do.
class FwCfgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pio_.insert(
        std::make_shared<FwCfg>(FwCfg::standard({.ram_bytes = 128ull << 20, .cpus = 3})),
        LABYRINTH_PORT_FW_CFG, FwCfg::kLen));
  }
  void select(uint16_t key) {
    ASSERT_TRUE(pio_.write(LABYRINTH_PORT_FW_CFG,
                           std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&key), 2)));
  }
  uint8_t inb() {
    uint8_t v = 0xEE;
    EXPECT_TRUE(pio_.read(LABYRINTH_PORT_FW_CFG + 1, std::span<uint8_t>(&v, 1)));
    return v;
  }
  // lib/x86/fwcfg.c's read: select, then bytes little endian.
  uint64_t get(uint16_t key, int bytes) {
    select(key);
    uint64_t r = 0;
    for (int i = 0; i < bytes; ++i) r |= uint64_t{inb()} << (8 * i);
    return r;
  }
  Bus pio_{"pio"};
};

TEST_F(FwCfgTest, AnswersTheKeysKvmUnitTestsRead) {
  select(FwCfg::kSignature);
  std::string sig;
  for (int i = 0; i < 4; ++i) sig += static_cast<char>(inb());
  EXPECT_EQ(sig, "QEMU");
  EXPECT_EQ(get(FwCfg::kId, 4), 1u) << "traditional interface, no DMA";
  EXPECT_EQ(get(FwCfg::kRamSize, 8), 128ull << 20);
  EXPECT_EQ(get(FwCfg::kNbCpus, 2), 3u);
  EXPECT_EQ(get(FwCfg::kMaxCpus, 2), 3u);
  EXPECT_EQ(get(0x11, 8), 0u) << "FW_CFG_MAX_RAM is no QEMU key: reads 0";
  EXPECT_EQ(get(FwCfg::kFileDir, 4), 0u) << "no files";
  EXPECT_EQ(get(FwCfg::kUuid, 8), 0u);
}

TEST_F(FwCfgTest, SelectRewindsAndReadsPastTheEndAreZero) {
  EXPECT_EQ(get(FwCfg::kNbCpus, 2), 3u);
  EXPECT_EQ(inb(), 0) << "past the 2-byte item";
  EXPECT_EQ(inb(), 0);
  EXPECT_EQ(get(FwCfg::kNbCpus, 1), 3u) << "a new select starts over";
  EXPECT_EQ(get(FwCfg::kNbCpus | FwCfg::kWriteChannel, 2), 3u) << "write-channel bit ignored";
  EXPECT_EQ(get(0xFFFF, 4), 0u) << "no item";
}

TEST_F(FwCfgTest, OtherWidthsAndWritesChangeNothing) {
  select(FwCfg::kSignature);
  EXPECT_EQ(inb(), 'Q');
  const uint8_t one = FwCfg::kRamSize;
  EXPECT_TRUE(pio_.write(LABYRINTH_PORT_FW_CFG, std::span<const uint8_t>(&one, 1)));  // outb
  EXPECT_TRUE(pio_.write(LABYRINTH_PORT_FW_CFG + 1, std::span<const uint8_t>(&one, 1)));
  EXPECT_EQ(inb(), 'E') << "still the signature, next byte";
  uint8_t sel[2] = {0xAA, 0xAA};
  EXPECT_TRUE(pio_.read(LABYRINTH_PORT_FW_CFG, sel));  // the selector reads as 0
  EXPECT_EQ(sel[0], 0);
  EXPECT_EQ(inb(), 'M');
  uint8_t wide[2] = {0xAA, 0xAA};
  EXPECT_FALSE(pio_.read(LABYRINTH_PORT_FW_CFG + 1, wide)) << "0x512 is not the device's";
}

TEST(FwCfg, MaxCpusDefaultsToCpus) {
  const auto items = FwCfg::standard({.ram_bytes = 1, .cpus = 2, .max_cpus = 8});
  EXPECT_EQ(items.at(FwCfg::kMaxCpus), (std::vector<uint8_t>{8, 0}));
  EXPECT_EQ(FwCfg::standard({.ram_bytes = 1, .cpus = 2}).at(FwCfg::kMaxCpus),
            (std::vector<uint8_t>{2, 0}));
}

}  // namespace
}  // namespace labyrinth::devices
