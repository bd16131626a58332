// MsixTable on its own: table entries read back, a message is taken at unmask and a
// refused one reported, masked vectors hold their pending bit and fire on unmask (entry
// mask, function mask, MSI-X disabled), bad accesses are errors, the capability layout.
#include "devices/pci/msix.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

#include "tests/support/device_fakes.h"

namespace labyrinth::devices {
namespace {

using test::RecordingMsi;

class Msix : public ::testing::Test {
 protected:
  uint32_t rd(uint64_t offset) {
    std::array<uint8_t, 4> b{};
    EXPECT_TRUE(table_.read_table(offset, b).has_value()) << offset;
    uint32_t v = 0;
    std::memcpy(&v, b.data(), 4);
    return v;
  }
  std::expected<void, MsixError> wr(uint64_t offset, uint32_t v) {
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), &v, 4);
    return table_.write_table(offset, b);
  }
  // Entry i: message, then the vector control word (mask bit 0), as Linux writes it.
  std::expected<void, MsixError> entry(uint16_t i, uint64_t address, uint32_t data, bool masked) {
    const uint64_t at = uint64_t{MsixTable::kEntrySize} * i;
    EXPECT_TRUE(wr(at, static_cast<uint32_t>(address)));
    EXPECT_TRUE(wr(at + 4, static_cast<uint32_t>(address >> 32)));
    EXPECT_TRUE(wr(at + 8, data));
    return wr(at + 12, masked ? 1 : 0);
  }
  uint64_t pba() {
    std::array<uint8_t, 8> b{};
    EXPECT_TRUE(table_.read_pba(0, b).has_value());
    uint64_t v = 0;
    std::memcpy(&v, b.data(), 8);
    return v;
  }
  void enable(bool on, bool function_mask = false) {
    table_.write_control(
        (on ? MsixTable::kEnable : 0) | (function_mask ? MsixTable::kFunctionMask : 0),
        0xFFFF0000u);
  }

  std::array<RecordingMsi, 3> msi_;
  std::vector<MsiLine*> lines_{&msi_[0], &msi_[1], &msi_[2]};
  MsixTable table_{lines_};
};

TEST_F(Msix, EntriesReadBackWhatWasWrittenAndStartMasked) {
  EXPECT_EQ(table_.size(), 3);
  EXPECT_EQ(rd(16 + 12), 1u) << "entries start masked";
  ASSERT_TRUE(entry(1, 0x1'FEE0'1000ull, 0x45, true));
  EXPECT_EQ(rd(16), 0xFEE01000u);
  EXPECT_EQ(rd(16 + 4), 1u);
  EXPECT_EQ(rd(16 + 8), 0x45u);
  EXPECT_EQ(rd(16 + 12), 1u);
  EXPECT_EQ(rd(0 + 8), 0u) << "another entry untouched";
  EXPECT_FALSE(msi_[1].configured) << "the message is taken at unmask, not on each write";
}

TEST_F(Msix, UnmaskConfiguresTheLineAndReportsARefusedMessage) {
  ASSERT_TRUE(entry(0, 0xFEE00000, 0x41, false));
  EXPECT_TRUE(msi_[0].configured);
  EXPECT_EQ(msi_[0].address, 0xFEE00000u);
  EXPECT_EQ(msi_[0].data, 0x41u);
  auto r = entry(2, 0x1000, 0x41, false);  // not an x86 MSI address
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), MsixError::rejected_message);
  EXPECT_FALSE(msi_[2].configured);
}

TEST_F(Msix, DisabledVectorIsHeldPendingAndFiresOnceWhenEnabled) {
  ASSERT_TRUE(entry(1, 0xFEE00000, 0x41, false));
  table_.fire(1);
  table_.fire(1);
  EXPECT_EQ(msi_[1].triggers.load(), 0) << "MSI-X not enabled yet";
  EXPECT_EQ(pba(), 0b010u);
  enable(true);
  EXPECT_EQ(msi_[1].triggers.load(), 1) << "the pending bit fires once";
  EXPECT_EQ(pba(), 0u);
  table_.fire(1);
  EXPECT_EQ(msi_[1].triggers.load(), 2) << "enabled and unmasked: at once";
  EXPECT_EQ(pba(), 0u);
}

TEST_F(Msix, EntryMaskHoldsOnlyItsVector) {
  enable(true);
  ASSERT_TRUE(entry(0, 0xFEE00000, 0x40, false));
  ASSERT_TRUE(entry(2, 0xFEE00000, 0x42, true));
  table_.fire(0);
  table_.fire(2);
  EXPECT_EQ(msi_[0].triggers.load(), 1);
  EXPECT_EQ(msi_[2].triggers.load(), 0);
  EXPECT_EQ(pba(), 0b100u);
  // Byte reads of the PBA see the same bit.
  std::array<uint8_t, 1> b{};
  ASSERT_TRUE(table_.read_pba(0, b));
  EXPECT_EQ(b[0], 0b100u);
  ASSERT_TRUE(wr(2 * 16 + 12, 0));  // unmask entry 2
  EXPECT_EQ(msi_[2].triggers.load(), 1);
  EXPECT_EQ(pba(), 0u);
}

TEST_F(Msix, FunctionMaskHoldsEveryVector) {
  ASSERT_TRUE(entry(0, 0xFEE00000, 0x40, false));
  ASSERT_TRUE(entry(1, 0xFEE00000, 0x41, false));
  enable(true, /*function_mask=*/true);
  EXPECT_EQ(table_.control_bits(), MsixTable::kEnable | MsixTable::kFunctionMask);
  table_.fire(0);
  table_.fire(1);
  EXPECT_EQ(msi_[0].triggers.load() + msi_[1].triggers.load(), 0);
  EXPECT_EQ(pba(), 0b011u);
  // A config write that misses Message Control's upper byte changes nothing.
  table_.write_control(0, 0x0000FFFFu);
  EXPECT_EQ(pba(), 0b011u);
  enable(true, false);
  EXPECT_EQ(table_.control_bits(), MsixTable::kEnable);
  EXPECT_EQ(msi_[0].triggers.load(), 1);
  EXPECT_EQ(msi_[1].triggers.load(), 1);
  EXPECT_EQ(pba(), 0u);
}

TEST_F(Msix, NoVectorAndBadAccessesAreRefused) {
  enable(true);
  table_.fire(3);
  table_.fire(0xFFFF);  // virtio's NO_VECTOR
  EXPECT_EQ(pba(), 0u);
  for (auto& m : msi_) EXPECT_EQ(m.triggers.load(), 0);
  std::array<uint8_t, 4> w{};
  std::array<uint8_t, 8> q{};
  std::array<uint8_t, 2> h{};
  EXPECT_EQ(table_.read_table(3 * 16, w).error(), MsixError::bad_access) << "past the table";
  EXPECT_EQ(table_.read_table(2, w).error(), MsixError::bad_access) << "unaligned";
  EXPECT_EQ(table_.read_table(0, q).error(), MsixError::bad_access) << "8-byte";
  EXPECT_EQ(table_.write_table(0, h).error(), MsixError::bad_access) << "2-byte";
  EXPECT_EQ(table_.write_table(3 * 16 + 12, w).error(), MsixError::bad_access);
  EXPECT_EQ(table_.read_pba(8, w).error(), MsixError::bad_access) << "past the PBA";
  EXPECT_EQ(table_.read_pba(6, w).error(), MsixError::bad_access) << "crosses the qword";
  EXPECT_EQ(table_.read_pba(2, w).error(), MsixError::bad_access) << "unaligned";
}

TEST_F(Msix, CapabilityLayout) {
  std::array<uint8_t, 256> cfg{};
  MsixTable::put_capability(cfg, 0x84, 0x90, table_.size(), 0x4000, 0x5000);
  uint32_t d[3];
  std::memcpy(d, &cfg[0x84], sizeof d);
  EXPECT_EQ(d[0], 0x0002'90'11u) << "id 0x11, next 0x90, table size - 1 = 2";
  EXPECT_EQ(d[1], 0x4000u);
  EXPECT_EQ(d[2], 0x5000u);
  EXPECT_EQ(table_.control_bits(), 0u);
}

TEST(MsixSize, AtMostSixtyFourVectors) {
  std::vector<MsiLine*> lines(100, nullptr);
  EXPECT_EQ(MsixTable(lines).size(), MsixTable::kMaxVectors);
}

}  // namespace
}  // namespace labyrinth::devices
