// PciType0Config on its own: the identity registers, the BAR size probe and its end, the
// command register's writable bits, the interrupt line byte, byte-lane writes, the MSI-X
// control bits passed to the table, and read-only registers that ignore writes.
#include "devices/pci/type0_config.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "tests/support/device_fakes.h"

namespace labyrinth::devices {
namespace {

using test::RecordingMsi;

constexpr PciId kId{.vendor = 0x1234,
                    .device = 0x4C4E,
                    .class_code = 0x020000,
                    .revision = 3,
                    .subsystem_vendor = 0x1AF4,
                    .subsystem = 0x0040};
constexpr uint32_t kBarGpa = 0xD0002000, kBarSize = 0x2000;
constexpr uint8_t kMsixCap = 0x40;

class Type0 : public ::testing::Test {
 protected:
  Type0() { MsixTable::put_capability(cfg_.image(), kMsixCap, 0, msix_.size(), 0x1000, 0x1800); }

  std::array<RecordingMsi, 2> msi_;
  std::vector<MsiLine*> lines_{&msi_[0], &msi_[1]};
  MsixTable msix_{lines_};
  PciType0Config cfg_{kId, kBarGpa, kBarSize, kMsixCap, kMsixCap, msix_};
};

TEST_F(Type0, IdentityRegistersComeFromTheIds) {
  EXPECT_EQ(cfg_.read(0x00), 0x4C4E1234u);
  EXPECT_EQ(cfg_.read(0x08), 0x02000003u);  // class, subclass, prog-if, revision
  EXPECT_EQ(cfg_.read(0x2C), 0x00401AF4u);
  EXPECT_EQ(cfg_.read(0x34) & 0xFF, kMsixCap);
  EXPECT_EQ(cfg_.read(0x04) >> 16, PciType0Config::kStatusCapList);
  EXPECT_EQ(cfg_.read(0x0C), 0u);  // header type 0, no BIST
}

TEST_F(Type0, TheBarAnswersTheSizeProbeAndDoesNotMove) {
  EXPECT_EQ(cfg_.read(0x10), kBarGpa);
  cfg_.write(0x10, 0xFFFFFFFFu, 0xFFFFFFFFu);
  EXPECT_EQ(cfg_.read(0x10), ~(kBarSize - 1));
  cfg_.write(0x10, 0x12345000u, 0xFFFFFFFFu);  // the driver writes an address back
  EXPECT_EQ(cfg_.read(0x10), kBarGpa);
  cfg_.write(0x10, 0xFFFFFFFFu, 0x000000FFu);  // one byte of ones is not the probe
  EXPECT_EQ(cfg_.read(0x10), kBarGpa);
}

TEST_F(Type0, CommandKeepsMemoryBusMasterAndIntxDisableOnly) {
  cfg_.write(0x04, 0xFFFFFFFFu, 0xFFFFFFFFu);
  EXPECT_EQ(cfg_.read(0x04) & 0xFFFF, PciType0Config::kCommandMask);
  EXPECT_EQ(cfg_.read(0x04) >> 16, PciType0Config::kStatusCapList);  // status unchanged
  cfg_.write(0x04, 0x00000000u, 0x000000FFu);                        // the low byte only
  EXPECT_EQ(cfg_.read(0x04) & 0xFFFF, 0x0400u);
  cfg_.write(0x04, 0xFFFF0000u, 0xFFFF0000u);  // a status write leaves the command alone
  EXPECT_EQ(cfg_.command(), 0x0400u);
}

TEST_F(Type0, InterruptLineIsStoredAndThePinReadsZero) {
  cfg_.write(0x3C, 0x0000010Bu, 0x000000FFu);
  EXPECT_EQ(cfg_.read(0x3C), 0x0Bu);           // pin 0: MSI-X only
  cfg_.write(0x3C, 0x00000000u, 0x0000FF00u);  // the pin byte is read-only
  EXPECT_EQ(cfg_.read(0x3C), 0x0Bu);
}

TEST_F(Type0, MsixControlGoesToTheTable) {
  EXPECT_EQ(cfg_.read(kMsixCap) & MsixTable::kEnable, 0u);
  cfg_.write(kMsixCap, MsixTable::kEnable | MsixTable::kFunctionMask, 0xFFFF0000u);
  EXPECT_EQ(msix_.control_bits(), MsixTable::kEnable | MsixTable::kFunctionMask);
  EXPECT_EQ(cfg_.read(kMsixCap) & (MsixTable::kEnable | MsixTable::kFunctionMask),
            MsixTable::kEnable | MsixTable::kFunctionMask);
  EXPECT_EQ((cfg_.read(kMsixCap) >> 16) & 0x7FF, msix_.size() - 1u);  // table size - 1
}

TEST_F(Type0, OtherRegistersIgnoreWrites) {
  const uint32_t ids = cfg_.read(0x00), cls = cfg_.read(0x08), caps = cfg_.read(0x34);
  cfg_.write(0x00, 0u, 0xFFFFFFFFu);
  cfg_.write(0x08, 0u, 0xFFFFFFFFu);
  cfg_.write(0x34, 0u, 0xFFFFFFFFu);
  cfg_.write(0x14, 0xFFFFFFFFu, 0xFFFFFFFFu);  // BAR1 does not exist
  EXPECT_EQ(cfg_.read(0x00), ids);
  EXPECT_EQ(cfg_.read(0x08), cls);
  EXPECT_EQ(cfg_.read(0x34), caps);
  EXPECT_EQ(cfg_.read(0x14), 0u);
}

}  // namespace
}  // namespace labyrinth::devices
