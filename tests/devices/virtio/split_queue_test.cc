// SplitQueue: every index, address and length the guest writes is validated; a
// malformed chain is counted (returned as an error), given back, and the queue goes on.
#include "devices/virtio/split_queue.h"

#include <gtest/gtest.h>

#include "devices/virtio/virtio_abi.h"
#include "tests/support/device_fakes.h"

namespace labyrinth::devices::virtio {
namespace {

using test::FakeRam;

constexpr uint64_t kBase = 0x10000;
constexpr uint16_t kSize = 8;
constexpr uint64_t kDesc = kBase, kAvail = kBase + 0x1000, kUsed = kBase + 0x2000,
                   kData = kBase + 0x4000;

class SplitQueueTest : public ::testing::Test {
 protected:
  SplitQueueTest() : ram_(kBase, 0x10000) {}
  SplitQueue make() { return SplitQueue::create(ram_, kSize, kDesc, kAvail, kUsed).value(); }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    ram_.put(kDesc + 16 * i, VirtqDesc{addr, len, flags, next});
  }
  void offer(uint16_t head) {  // the driver makes head available
    const uint16_t idx = ram_.get<uint16_t>(kAvail + 2);
    ram_.put<uint16_t>(kAvail + 4 + 2 * (idx % kSize), head);
    ram_.put<uint16_t>(kAvail + 2, idx + 1);
  }
  uint16_t used_idx() const { return ram_.get<uint16_t>(kUsed + 2); }
  VirtqUsedElem used(uint16_t i) const {
    return ram_.get<VirtqUsedElem>(kUsed + 4 + 8 * (i % kSize));
  }
  // After a malformed chain, a good one still goes through.
  void expect_still_works(SplitQueue& q) {
    desc(7, kData + 0x800, 64, kDescFWrite);
    offer(7);
    SplitQueue::Chain c;
    auto r = q.pop(c);
    ASSERT_TRUE(r.has_value()) << to_string(r.error());
    ASSERT_TRUE(*r);
    EXPECT_EQ(c.head, 7);
    EXPECT_EQ(c.writable, 64u);
  }

  FakeRam ram_;
};

TEST_F(SplitQueueTest, CreateRejectsBadSizesAlignmentsAndRingsOutsideRam) {
  for (uint16_t size : {0, 3, 6, 512, 1024}) {
    auto q = SplitQueue::create(ram_, size, kDesc, kAvail, kUsed);
    ASSERT_FALSE(q.has_value()) << size;
    EXPECT_EQ(q.error(), QueueError::bad_size);
  }
  EXPECT_EQ(SplitQueue::create(ram_, kSize, kDesc + 8, kAvail, kUsed).error(),
            QueueError::misaligned);
  EXPECT_EQ(SplitQueue::create(ram_, kSize, kDesc, kAvail + 1, kUsed).error(),
            QueueError::misaligned);
  EXPECT_EQ(SplitQueue::create(ram_, kSize, kDesc, kAvail, kUsed + 2).error(),
            QueueError::misaligned);
  EXPECT_EQ(SplitQueue::create(ram_, kSize, 0x1000, kAvail, kUsed).error(),
            QueueError::ring_outside);
  // The used ring straddles the end of RAM.
  EXPECT_EQ(SplitQueue::create(ram_, kSize, kDesc, kAvail, ram_.end() - 16).error(),
            QueueError::ring_outside);
  EXPECT_EQ(SplitQueue::create(ram_, kSize, 0xFFFFFFFFFFFFFFF0ull, kAvail, kUsed).error(),
            QueueError::ring_outside);
  EXPECT_TRUE(SplitQueue::create(ram_, kSize, kDesc, kAvail, kUsed).has_value());
}

TEST_F(SplitQueueTest, PopsAChainOfReadableThenWritableBuffersAndReturnsIt) {
  auto q = make();
  SplitQueue::Chain c;
  EXPECT_EQ(q.pop(c), false) << "empty";
  desc(2, kData, 12, kDescFNext, 5);
  desc(5, kData + 0x100, 100, kDescFNext | kDescFWrite, 1);
  desc(1, kData + 0x200, 200, kDescFWrite);
  offer(2);
  EXPECT_TRUE(q.has_available());
  ASSERT_EQ(q.pop(c), true);
  EXPECT_EQ(c.head, 2);
  ASSERT_EQ(c.count, 3u);
  EXPECT_EQ(c.readable, 12u);
  EXPECT_EQ(c.writable, 300u);
  EXPECT_FALSE(c.seg[0].writable);
  EXPECT_TRUE(c.seg[2].writable);
  EXPECT_EQ(c.seg[1].bytes.data(), ram_.translate(kData + 0x100, 100)->data());
  EXPECT_FALSE(q.has_available());
  q.push_used(c.head, 150);
  EXPECT_EQ(used_idx(), 1);
  EXPECT_EQ(used(0).id, 2u);
  EXPECT_EQ(used(0).len, 150u);
}

TEST_F(SplitQueueTest, OutOfRangeHeadIsCountedAndSkipped) {
  auto q = make();
  offer(kSize);  // head 8 of 8
  SplitQueue::Chain c;
  auto r = q.pop(c);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), QueueError::bad_head);
  EXPECT_EQ(used_idx(), 0) << "an invalid head cannot be given back";
  offer(0xFFFF);
  EXPECT_EQ(q.pop(c).error(), QueueError::bad_head);
  expect_still_works(q);
}

TEST_F(SplitQueueTest, OutOfRangeNextIsCountedAndTheChainGivenBack) {
  auto q = make();
  desc(0, kData, 64, kDescFNext, 9);
  offer(0);
  SplitQueue::Chain c;
  EXPECT_EQ(q.pop(c).error(), QueueError::bad_next);
  EXPECT_EQ(used_idx(), 1);
  EXPECT_EQ(used(0).id, 0u);
  EXPECT_EQ(used(0).len, 0u);
  expect_still_works(q);
}

TEST_F(SplitQueueTest, LoopsStopAtTheQueueSize) {
  auto q = make();
  desc(0, kData, 64, kDescFNext, 0);  // points at itself
  offer(0);
  SplitQueue::Chain c;
  EXPECT_EQ(q.pop(c).error(), QueueError::too_long);
  // A longer cycle 1 -> 2 -> 3 -> 1.
  desc(1, kData, 64, kDescFNext, 2);
  desc(2, kData, 64, kDescFNext, 3);
  desc(3, kData, 64, kDescFNext, 1);
  offer(1);
  EXPECT_EQ(q.pop(c).error(), QueueError::too_long);
  // A chain of exactly size descriptors is fine.
  for (uint16_t i = 0; i < kSize; ++i) {
    desc(i, kData + 64 * i, 64, i + 1 < kSize ? kDescFNext : 0, i + 1);
  }
  offer(0);
  ASSERT_EQ(q.pop(c), true);
  EXPECT_EQ(c.count, kSize);
  expect_still_works(q);
}

TEST_F(SplitQueueTest, ZeroAndHugeLengthsAreRejected) {
  auto q = make();
  SplitQueue::Chain c;
  desc(0, kData, 0, 0);
  offer(0);
  EXPECT_EQ(q.pop(c).error(), QueueError::zero_length);
  desc(0, kData, 0xFFFFFFFF, kDescFWrite);
  offer(0);
  EXPECT_EQ(q.pop(c).error(), QueueError::bad_buffer);
  desc(0, ram_.end() - 16, 17, kDescFWrite);  // one byte past the end of RAM
  offer(0);
  EXPECT_EQ(q.pop(c).error(), QueueError::bad_buffer);
  expect_still_works(q);
}

TEST_F(SplitQueueTest, AddressesOutsideRamAndOverflowingAreRejected) {
  auto q = make();
  SplitQueue::Chain c;
  const uint64_t addrs[] = {0, kBase - 64, ram_.end(), 0xFEE00000, 0xFFFFFFFFFFFFFFC0};
  for (uint64_t addr : addrs) {
    desc(0, addr, 128, kDescFWrite);
    offer(0);
    EXPECT_EQ(q.pop(c).error(), QueueError::bad_buffer) << std::hex << addr;
  }
  expect_still_works(q);
}

TEST_F(SplitQueueTest, IndirectAndMisorderedChainsAreRejected) {
  auto q = make();
  SplitQueue::Chain c;
  desc(0, kData, 64, kDescFIndirect);
  offer(0);
  EXPECT_EQ(q.pop(c).error(), QueueError::indirect);
  desc(0, kData, 64, kDescFWrite | kDescFNext, 1);
  desc(1, kData, 64, 0);  // readable after writable
  offer(0);
  EXPECT_EQ(q.pop(c).error(), QueueError::bad_order);
  expect_still_works(q);
}

TEST_F(SplitQueueTest, AnAvailIndexFarAheadIsAnErrorNotAnOverrun) {
  auto q = make();
  ram_.put<uint16_t>(kAvail + 2, kSize + 1);
  SplitQueue::Chain c;
  EXPECT_EQ(q.pop(c).error(), QueueError::avail_idx_jump);
  EXPECT_EQ(used_idx(), 0);
}

TEST_F(SplitQueueTest, InterruptSuppressionFollowsTheAvailFlags) {
  auto q = make();
  EXPECT_TRUE(q.needs_interrupt());
  ram_.put<uint16_t>(kAvail, kAvailFNoInterrupt);
  EXPECT_FALSE(q.needs_interrupt());
}

TEST_F(SplitQueueTest, IndicesWrapAround) {
  auto q = make();
  SplitQueue::Chain c;
  for (int n = 0; n < 70000; ++n) {
    desc(3, kData, 32, kDescFWrite);
    offer(3);
    ASSERT_EQ(q.pop(c), true) << n;
    q.push_used(c.head, 32);
  }
  EXPECT_EQ(used_idx(), static_cast<uint16_t>(70000));
}

}  // namespace
}  // namespace labyrinth::devices::virtio
