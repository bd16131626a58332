// VirtioNet's data path through its transport: frames both ways, the RX host span
// recorded, backpressure without drops, malformed chains counted while it keeps working,
// a corrupt ring (avail.idx far ahead) stopping it with DEVICE_NEEDS_RESET until a reset.
#include "devices/virtio/net/virtio_net.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <vector>

#include "tests/devices/virtio/net_fixture.h"

namespace labyrinth::devices::virtio {
namespace {

using VirtioNetTest = test::NetFixture;

std::vector<std::byte> frame(size_t n, uint8_t seed) {
  std::vector<std::byte> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = std::byte(static_cast<uint8_t>(seed + i));
  return f;
}

TEST_F(VirtioNetTest, ReceivesAFrameIntoPostedBuffersAndSignalsRx) {
  bring_up();
  // A two-descriptor RX chain: the header alone, then the rest (Linux may split so).
  desc(kRxDesc, 0, kBuf, 12, kDescFWrite | kDescFNext, 1);
  desc(kRxDesc, 1, kBuf + 0x100, 1518, kDescFWrite);
  offer(kRxAvail, 0);
  const auto f = frame(1000, 7);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 1000);
  run();
  ASSERT_EQ(used_idx(kRxUsed), 1);
  EXPECT_EQ(used(kRxUsed, 0).id, 0u);
  EXPECT_EQ(used(kRxUsed, 0).len, 1012u);
  const auto hdr = ram_.get<VirtioNetHdr>(kBuf);
  EXPECT_EQ(hdr.num_buffers, 1);
  EXPECT_EQ(hdr.flags, 0);
  auto got = ram_.translate(kBuf + 0x100, 1000).value();
  EXPECT_TRUE(std::equal(got.begin(), got.end(), f.begin()));
  EXPECT_EQ(msi_[1].triggers.load(), 1);
  EXPECT_EQ(net_->metrics().rx_frames.get(), 1u);
  EXPECT_EQ(net_->latency().host_rx.count(), 1u) << "frame ready -> used + irq recorded";
}

TEST_F(VirtioNetTest, WithoutBuffersFramesWaitForTheRxKickInsteadOfDropping) {
  bring_up();
  for (uint8_t i = 0; i < 3; ++i) {
    const auto f = frame(60, i);
    ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 60);
  }
  run();
  EXPECT_EQ(used_idx(kRxUsed), 0);
  EXPECT_GE(net_->metrics().rx_waits.get(), 1u);
  for (uint16_t i = 0; i < 3; ++i) {
    desc(kRxDesc, i, kBuf + 0x1000 * i, 1530, kDescFWrite);
    offer(kRxAvail, i);
  }
  kick(VirtioNet::kRxQueue);
  EXPECT_EQ(used_idx(kRxUsed), 3);
  EXPECT_EQ(net_->metrics().rx_frames.get(), 3u);
  EXPECT_EQ(ram_.get<uint8_t>(kBuf + 0x2000 + 12), 2) << "third frame, in order";
}

TEST_F(VirtioNetTest, TransmitsEachChainAsOneFrameWithoutTheHeader) {
  bring_up();
  const auto f = frame(1400, 3);
  ram_.put(kBuf, VirtioNetHdr{});
  std::memcpy(ram_.translate(kBuf + 12, 600).value().data(), f.data(), 600);
  std::memcpy(ram_.translate(kBuf + 0x1000, 800).value().data(), f.data() + 600, 800);
  desc(kTxDesc, 4, kBuf, 612, kDescFNext, 5);
  desc(kTxDesc, 5, kBuf + 0x1000, 800, 0);
  offer(kTxAvail, 4);
  kick(VirtioNet::kTxQueue);
  std::vector<std::byte> got(2000);
  ASSERT_EQ(::recv(peer_, got.data(), got.size(), 0), 1400);
  EXPECT_TRUE(std::equal(f.begin(), f.end(), got.begin()));
  ASSERT_EQ(used_idx(kTxUsed), 1);
  EXPECT_EQ(used(kTxUsed, 0).id, 4u);
  EXPECT_EQ(net_->metrics().tx_frames.get(), 1u);
  EXPECT_EQ(msi_[2].triggers.load(), 1);
}

TEST_F(VirtioNetTest, MalformedChainsAreCountedAndTheDeviceKeepsWorking) {
  bring_up();
  desc(kTxDesc, 0, kBuf, 100, kDescFNext, 0);  // a loop
  offer(kTxAvail, 0);
  offer(kTxAvail, 99);                              // head out of range
  desc(kTxDesc, 1, 0xFFFFFFFFFFFFF000ull, 100, 0);  // outside RAM
  offer(kTxAvail, 1);
  desc(kTxDesc, 2, kBuf, 0, 0);  // empty
  offer(kTxAvail, 2);
  desc(kTxDesc, 3, kBuf, 8, 0);  // shorter than the header
  offer(kTxAvail, 3);
  desc(kTxDesc, 6, kBuf, 0xFFFFFFFF, 0);  // huge
  offer(kTxAvail, 6);
  kick(VirtioNet::kTxQueue);
  const auto& m = net_->metrics();
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::too_long)].get(), 1u);
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::bad_head)].get(), 1u);
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::bad_buffer)].get(), 2u);
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::zero_length)].get(), 1u);
  EXPECT_EQ(m.tx_drop_malformed.get(), 1u);
  EXPECT_EQ(m.tx_frames.get(), 0u);
  EXPECT_EQ(used_idx(kTxUsed), 5) << "every chain with a valid head was given back";
  // RX: a chain outside RAM, then a good one: the frame lands in the good one.
  desc(kRxDesc, 0, kRam + kRamSize - 100, 1530, kDescFWrite);
  offer(kRxAvail, 0);
  desc(kRxDesc, 1, kBuf, 1530, kDescFWrite);
  offer(kRxAvail, 1);
  const auto f = frame(64, 1);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 64);
  run();
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::bad_buffer)].get(), 3u);
  EXPECT_EQ(m.rx_frames.get(), 1u);
  EXPECT_EQ(used(kRxUsed, 1).id, 1u);
  EXPECT_EQ(used(kRxUsed, 1).len, 76u);
  // And TX still works.
  ram_.put(kBuf + 0x2000, VirtioNetHdr{});
  desc(kTxDesc, 7, kBuf + 0x2000, 12 + 64, 0);
  offer(kTxAvail, 7);
  kick(VirtioNet::kTxQueue);
  EXPECT_EQ(m.tx_frames.get(), 1u);
}

TEST_F(VirtioNetTest, ARxBufferTooSmallDropsTheFrameAndReturnsTheBuffer) {
  bring_up();
  desc(kRxDesc, 0, kBuf, 100, kDescFWrite);
  offer(kRxAvail, 0);
  const auto f = frame(500, 1);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 500);
  run();
  EXPECT_EQ(net_->metrics().rx_drop_too_small.get(), 1u);
  EXPECT_EQ(used_idx(kRxUsed), 1);
  EXPECT_EQ(used(kRxUsed, 0).len, 0u);
}

// Found by virtio_fuzz: a chain given back without a frame (too small, malformed) left
// the RX used ring changed with no interrupt, so a driver never learnt to repost it.
TEST_F(VirtioNetTest, RxBuffersGivenBackEmptyAreSignalledLikeFrames) {
  bring_up();
  desc(kRxDesc, 0, kBuf, 100, kDescFWrite);  // too small for the frame
  offer(kRxAvail, 0);
  const auto f = frame(500, 1);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 500);
  run();
  ASSERT_EQ(used_idx(kRxUsed), 1);
  EXPECT_EQ(net_->metrics().rx_drop_too_small.get(), 1u);
  EXPECT_EQ(msi_[1].triggers.load(), 1) << "the buffer came back: the driver must hear of it";
  // A malformed chain (an empty buffer), and no other: given back, signalled, the next
  // frame waits for buffers.
  desc(kRxDesc, 1, kBuf, 0, kDescFWrite);
  offer(kRxAvail, 1);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 500);
  kick(VirtioNet::kRxQueue);
  ASSERT_EQ(used_idx(kRxUsed), 2);
  EXPECT_EQ(used(kRxUsed, 1).len, 0u);
  EXPECT_EQ(net_->metrics().bad_chains[static_cast<size_t>(QueueError::zero_length)].get(), 1u);
  EXPECT_EQ(msi_[1].triggers.load(), 2);
  EXPECT_EQ(net_->metrics().irqs.get(), 2u);
  // With VIRTQ_AVAIL_F_NO_INTERRUPT the driver asked for none.
  ram_.put<uint16_t>(kRxAvail, kAvailFNoInterrupt);
  desc(kRxDesc, 2, kBuf, 100, kDescFWrite);
  offer(kRxAvail, 2);
  kick(VirtioNet::kRxQueue);
  ASSERT_EQ(used_idx(kRxUsed), 3);
  EXPECT_EQ(msi_[1].triggers.load(), 2);
}

// avail.idx more than a queue ahead: no position to skip to. The device counts it once,
// sets DEVICE_NEEDS_RESET with a configuration change interrupt, and does nothing more —
// kicks, frames from the TAP — until the driver resets it (virtio 1.2, 2.1.2).
TEST_F(VirtioNetTest, AnAvailIndexFarAheadStopsTheDeviceUntilTheDriverResetsIt) {
  bring_up();
  const auto& m = net_->metrics();
  constexpr auto kJump = static_cast<size_t>(QueueError::avail_idx_jump);
  ram_.put(kBuf, VirtioNetHdr{});
  desc(kTxDesc, 0, kBuf, 12 + 60, 0);
  offer(kTxAvail, 0);
  ram_.put<uint16_t>(kTxAvail + 2, 1000);
  EXPECT_EQ(drv_->status() & kStatusNeedsReset, 0);
  kick(VirtioNet::kTxQueue);
  EXPECT_EQ(m.bad_chains[kJump].get(), 1u);
  EXPECT_EQ(m.needs_reset.get(), 1u);
  EXPECT_NE(drv_->status() & kStatusNeedsReset, 0);
  EXPECT_EQ(msi_[0].triggers.load(), 1) << "the configuration change notification";
  EXPECT_EQ(drv_->rd<uint8_t>(VirtioPciTransport::kIsrOff), kIsrConfig);
  EXPECT_EQ(used_idx(kTxUsed), 0) << "nothing consumed";
  // Stopped: more kicks, a sane index, RX buffers and a frame change nothing.
  kick(VirtioNet::kTxQueue);
  ram_.put<uint16_t>(kTxAvail + 2, 1);
  kick(VirtioNet::kTxQueue);
  desc(kRxDesc, 0, kBuf + 0x1000, 1530, kDescFWrite);
  offer(kRxAvail, 0);
  const auto f = frame(64, 9);
  ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 64);
  kick(VirtioNet::kRxQueue);
  EXPECT_EQ(m.bad_chains[kJump].get(), 1u) << "counted once, not once per pass";
  EXPECT_EQ(m.needs_reset.get(), 1u);
  EXPECT_EQ(used_idx(kTxUsed), 0);
  EXPECT_EQ(used_idx(kRxUsed), 0);
  EXPECT_EQ(m.tx_frames.get() + m.rx_frames.get(), 0u);
  EXPECT_EQ(msi_[0].triggers.load() + msi_[1].triggers.load() + msi_[2].triggers.load(), 1);
  EXPECT_NE(drv_->status() & kStatusNeedsReset, 0);
  // The reset clears it; the driver starts again on clean rings and both ways work: the
  // frame that waited in the TAP is delivered.
  drv_->status(0);
  EXPECT_EQ(drv_->status(), 0);
  for (uint64_t ring : {kRxAvail, kRxUsed, kTxAvail, kTxUsed}) ram_.put<uint32_t>(ring, 0);
  bring_up();
  EXPECT_EQ(drv_->status() & kStatusNeedsReset, 0);
  offer(kTxAvail, 0);
  desc(kRxDesc, 0, kBuf + 0x1000, 1530, kDescFWrite);
  offer(kRxAvail, 0);
  kick(VirtioNet::kRxQueue);
  kick(VirtioNet::kTxQueue);
  EXPECT_EQ(m.tx_frames.get(), 1u);
  EXPECT_EQ(m.rx_frames.get(), 1u);
  EXPECT_EQ(used_idx(kRxUsed), 1);
  EXPECT_EQ(used_idx(kTxUsed), 1);
  EXPECT_EQ(m.bad_chains[kJump].get(), 1u);
}

TEST_F(VirtioNetTest, AnRxAvailIndexFarAheadStopsTheDeviceAndTheTapIsNotRead) {
  bring_up();
  ram_.put<uint16_t>(kRxAvail + 2, 500);
  for (uint8_t i = 0; i < 2; ++i) {
    const auto f = frame(60, i);
    ASSERT_EQ(::send(peer_, f.data(), f.size(), 0), 60);
  }
  run();
  const auto& m = net_->metrics();
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::avail_idx_jump)].get(), 1u);
  EXPECT_NE(drv_->status() & kStatusNeedsReset, 0);
  kick(VirtioNet::kRxQueue);
  EXPECT_EQ(m.bad_chains[static_cast<size_t>(QueueError::avail_idx_jump)].get(), 1u);
  EXPECT_EQ(m.rx_waits.get(), 0u) << "stopped, not waiting for buffers";
  EXPECT_EQ(m.rx_frames.get() + m.rx_drop_too_small.get(), 0u);
  // The first frame was read and held when the ring turned out corrupt and goes with the
  // reset; the second stayed in the TAP and arrives once the driver has started again.
  drv_->status(0);
  ram_.put<uint32_t>(kRxAvail, 0);
  bring_up();
  desc(kRxDesc, 0, kBuf, 1530, kDescFWrite);
  offer(kRxAvail, 0);
  kick(VirtioNet::kRxQueue);
  ASSERT_EQ(used_idx(kRxUsed), 1);
  EXPECT_EQ(ram_.get<uint8_t>(kBuf + 12), 1) << "the second frame";
  EXPECT_EQ(m.needs_reset.get(), 1u);
}

// A kick the event loop handles only after the driver has reset the device and started
// it again still sees the old, corrupt queues and stops them — that must not mark the
// new activation (the driver reads device_status before the loop has caught up).
TEST_F(VirtioNetTest, AFailureOfQueuesAlreadyResetDoesNotMarkTheNextActivation) {
  bring_up();
  ram_.put<uint16_t>(kTxAvail + 2, 1000);
  drv_->wr<uint16_t>(VirtioPciTransport::kNotifyOff + 4, 1);  // posted, not run
  // Reset and a new start, TX on other rings, all before the loop runs.
  constexpr uint64_t kTxDesc2 = kRam + 0xC000, kTxAvail2 = kRam + 0xD000, kTxUsed2 = kRam + 0xE000;
  drv_->status(0);
  drv_->status(kStatusAcknowledge | kStatusDriver);
  drv_->features(kFVersion1 | kNetFMac | kNetFStatus);
  drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  ASSERT_TRUE(drv_->setup_queue(0, kQ, kRxDesc, kRxAvail, kRxUsed, 1));
  ASSERT_TRUE(drv_->setup_queue(1, kQ, kTxDesc2, kTxAvail2, kTxUsed2, 2));
  drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  run();  // the kick (old queues: they fail), the reset, the new activation
  ASSERT_TRUE(net_->active());
  EXPECT_EQ(net_->metrics().needs_reset.get(), 1u) << "the old queues did fail";
  EXPECT_EQ(drv_->status() & kStatusNeedsReset, 0) << "but the new activation is sound";
  ram_.put(kBuf, VirtioNetHdr{});
  desc(kTxDesc2, 0, kBuf, 12 + 60, 0);
  offer(kTxAvail2, 0);
  kick(VirtioNet::kTxQueue);
  EXPECT_EQ(net_->metrics().tx_frames.get(), 1u);
  EXPECT_EQ(used_idx(kTxUsed2), 1);
}

}  // namespace
}  // namespace labyrinth::devices::virtio
