#include "vmm/memory/guest_memory.h"

#include <gtest/gtest.h>

namespace labyrinth::vmm::test {
namespace {

// The fixture is named after the class under test (the suite name); inside this
// namespace it shadows vmm::GuestMemory.
class GuestMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    const GpaRange ram[] = {{0, 8 * kMiB}, {4 * kGiB, 4 * kMiB}};
    mem_ = vmm::GuestMemory::create(ram).value();  // 12 MiB of lazy anonymous memory
  }
  std::unique_ptr<vmm::GuestMemory> mem_;
};
#define GUEST_MEMORY_TEST(name) TEST_F(GuestMemory, name)

GUEST_MEMORY_TEST(TranslatesInsideEachRange) {
  auto a = mem_->translate(0, 8 * kMiB);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->size(), 8 * kMiB);
  auto b = mem_->translate(4 * kGiB + 4096, 4096);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->size(), 4096u);
  auto last = mem_->translate(4 * kGiB + 4 * kMiB - 1, 1);
  EXPECT_TRUE(last.has_value());
  auto empty = mem_->translate(8 * kMiB - 1, 0);
  EXPECT_TRUE(empty.has_value());
}

GUEST_MEMORY_TEST(RejectsOutOfBounds) {
  EXPECT_EQ(mem_->translate(8 * kMiB, 1).error(), Error::gpa_out_of_range);      // end of low RAM
  EXPECT_EQ(mem_->translate(8 * kMiB - 1, 2).error(), Error::gpa_out_of_range);  // straddles
  EXPECT_EQ(mem_->translate(4 * kGiB + 4 * kMiB, 1).error(), Error::gpa_out_of_range);
  EXPECT_EQ(mem_->translate(4 * kGiB - 1, 2).error(), Error::gpa_out_of_range);  // gap -> RAM
}

GUEST_MEMORY_TEST(RejectsGaps) {
  EXPECT_EQ(mem_->translate(0xC0000000, 4).error(), Error::gpa_out_of_range);  // MMIO gap
  EXPECT_EQ(mem_->translate(1 * kGiB, 4).error(), Error::gpa_out_of_range);    // unbacked
  // Spanning low RAM, the gap and high RAM is not one range.
  EXPECT_EQ(mem_->translate(0, 4 * kGiB + 8).error(), Error::gpa_out_of_range);
}

GUEST_MEMORY_TEST(RejectsOverflow) {
  EXPECT_EQ(mem_->translate(UINT64_MAX, 2).error(), Error::gpa_overflow);
  EXPECT_EQ(mem_->translate(4096, UINT64_MAX).error(), Error::gpa_overflow);
  EXPECT_EQ(mem_->translate(UINT64_MAX - 4096, 4096).error(), Error::gpa_out_of_range);
}

GUEST_MEMORY_TEST(ReadWriteRoundTrip) {
  const uint64_t v = 0x1122334455667788;
  ASSERT_TRUE(mem_->write_obj(4 * kGiB + 8, v).has_value());
  EXPECT_EQ(mem_->read_obj<uint64_t>(4 * kGiB + 8).value(), v);
  EXPECT_EQ(mem_->write_obj(8 * kMiB - 4, v).error(), Error::gpa_out_of_range);
  EXPECT_EQ(mem_->read_obj<uint64_t>(UINT64_MAX - 3).error(), Error::gpa_overflow);
}

GUEST_MEMORY_TEST(ResidentBytesCountsTouchedPages) {
  const uint64_t before = mem_->resident_bytes();
  auto span = mem_->translate(2 * kMiB, 64 * 4096).value();  // in RAM
  for (size_t i = 0; i < span.size(); i += 4096) span[i] = std::byte{1};
  EXPECT_GE(mem_->resident_bytes(), before + 64 * 4096);
}

TEST(GuestMemoryCreate, RejectsMisalignedRanges) {
  const GpaRange bad[] = {{0x800, 4096}};
  EXPECT_EQ(vmm::GuestMemory::create(bad).error(), Error::boot_layout);
  const GpaRange empty[] = {{0, 0}};
  EXPECT_EQ(vmm::GuestMemory::create(empty).error(), Error::boot_layout);
}

TEST(MemoryLayout, SmallRamIsOneRangeAndPoolAtFourGiB) {
  auto l = MemoryLayout::compute(128 * kMiB, 32 * kMiB).value();  // valid sizes
  ASSERT_EQ(l.ram.size(), 1u);
  EXPECT_EQ(l.ram[0].size, 128 * kMiB);
  EXPECT_EQ(l.pool.gpa, 4 * kGiB);
  EXPECT_EQ(l.pool.size, 1 * kGiB);
  EXPECT_EQ(l.identity_map_end, 5 * kGiB);
}

TEST(MemoryLayout, LargeRamSplitsAroundTheGap) {
  auto l = MemoryLayout::compute(4 * kGiB, 2 * kGiB + 2 * kMiB).value();  // valid sizes
  ASSERT_EQ(l.ram.size(), 2u);
  EXPECT_EQ(l.ram[0].end(), 3 * kGiB);
  EXPECT_EQ(l.ram[1].gpa, 4 * kGiB);
  EXPECT_EQ(l.ram[1].size, 1 * kGiB);
  EXPECT_EQ(l.pool.gpa, 5 * kGiB);   // above RAM, 1 GiB aligned
  EXPECT_EQ(l.pool.size, 3 * kGiB);  // rounded up to whole GiB
  EXPECT_EQ(l.pool.gpa % kGiB, 0u);
  EXPECT_EQ(l.identity_map_end, 8 * kGiB);
}

TEST(MemoryLayout, NoPoolWindow) {
  auto l = MemoryLayout::compute(64 * kMiB, 0).value();  // valid sizes
  EXPECT_EQ(l.pool.size, 0u);
  EXPECT_EQ(l.identity_map_end, 4 * kGiB);  // still covers the MMIO gap (LAPIC, IOAPIC)
}

TEST(MemoryLayout, RejectsBadSizes) {
  EXPECT_FALSE(MemoryLayout::compute(0, 0).has_value());
  EXPECT_FALSE(MemoryLayout::compute(3 * kMiB, 0).has_value());
}

}  // namespace
}  // namespace labyrinth::vmm::test
