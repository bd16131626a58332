// VirtioPciTransport: the modern virtio PCI function Linux's virtio_pci probes, its
// feature negotiation, queue validation and MSI-X masking.
#include "devices/virtio/pci_transport.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>

#include "tests/devices/virtio/net_fixture.h"

namespace labyrinth::devices::virtio {
namespace {

using Transport = test::NetFixture;

TEST_F(Transport, ConfigSpaceIsAModernVirtioNetWithItsCapabilities) {
  EXPECT_EQ(transport_->read_config(0x00), 0x10411AF4u);
  EXPECT_EQ(transport_->read_config(0x08), 0x02000001u) << "Ethernet controller, revision 1";
  EXPECT_NE(transport_->read_config(0x04) & 0x00100000u, 0u) << "capability list";
  EXPECT_EQ(transport_->read_config(0x3C) >> 8 & 0xFF, 0u) << "no INTx pin";
  // BAR0: a 32-bit memory BAR; the size probe answers the size, the address stays.
  EXPECT_EQ(transport_->read_config(0x10), 0xD1000000u);
  transport_->write_config(0x10, 0xFFFFFFFF, 0xFFFFFFFF);
  EXPECT_EQ(transport_->read_config(0x10), ~uint32_t{VirtioPciTransport::kBarSize - 1});
  transport_->write_config(0x10, 0xD1000000u, 0xFFFFFFFF);
  EXPECT_EQ(transport_->read_config(0x10), 0xD1000000u);
  transport_->write_config(0x10, 0x12345000u, 0xFFFFFFFF);
  EXPECT_EQ(transport_->read_config(0x10), 0xD1000000u) << "the BAR does not move";

  auto caps = drv_->caps();
  std::map<uint8_t, uint8_t> by_type(caps.begin(), caps.end());
  ASSERT_EQ(caps.size(), 5u);
  for (uint8_t t :
       {kPciCapCommonCfg, kPciCapNotifyCfg, kPciCapIsrCfg, kPciCapDeviceCfg, kPciCapMsix}) {
    ASSERT_TRUE(by_type.contains(t)) << int{t};
  }
  auto field = [&](uint8_t type, uint8_t off) {
    return transport_->read_config(static_cast<uint8_t>(by_type[type] + off));
  };
  EXPECT_EQ(field(kPciCapCommonCfg, 8), VirtioPciTransport::kCommonOff);
  EXPECT_EQ(field(kPciCapCommonCfg, 12), common::kSize);
  EXPECT_EQ(field(kPciCapNotifyCfg, 8), VirtioPciTransport::kNotifyOff);
  EXPECT_EQ(field(kPciCapNotifyCfg, 16), VirtioPciTransport::kNotifyMultiplier);
  EXPECT_EQ(field(kPciCapIsrCfg, 8), VirtioPciTransport::kIsrOff);
  EXPECT_EQ(field(kPciCapDeviceCfg, 8), VirtioPciTransport::kDeviceOff);
  EXPECT_EQ(field(kPciCapMsix, 0) >> 16 & 0x7FF, 2u) << "3 vectors";
  EXPECT_EQ(field(kPciCapMsix, 4), VirtioPciTransport::kMsixTableOff);
  EXPECT_EQ(field(kPciCapMsix, 8), VirtioPciTransport::kMsixPbaOff);
}

TEST_F(Transport, DeviceConfigHasTheMacAndLinkUp) {
  EXPECT_EQ(drv_->device_features(), kFVersion1 | kNetFMac | kNetFStatus);
  const uint64_t dev = VirtioPciTransport::kDeviceOff;
  EXPECT_EQ(drv_->rd<uint8_t>(dev + 0), 0x02);
  EXPECT_EQ(drv_->rd<uint8_t>(dev + 5), 0x2A);
  EXPECT_EQ(drv_->rd<uint16_t>(dev + 6), kNetSLinkUp);
  EXPECT_EQ(drv_->rd<uint16_t>(common::kNumQueues), 2);
  drv_->wr<uint16_t>(common::kQueueSelect, 0);
  EXPECT_EQ(drv_->rd<uint16_t>(common::kQueueSize), 256);
}

TEST_F(Transport, FeaturesOkNeedsVersion1AndOnlyOfferedBits) {
  const uint8_t base = kStatusAcknowledge | kStatusDriver;
  drv_->status(base);
  drv_->features(kNetFMac);  // no VERSION_1: a legacy driver
  drv_->status(base | kStatusFeaturesOk);
  EXPECT_EQ(drv_->status() & kStatusFeaturesOk, 0);
  drv_->status(0);
  drv_->status(base);
  drv_->features(kFVersion1 | (uint64_t{1} << 0));  // VIRTIO_NET_F_CSUM: not offered
  drv_->status(base | kStatusFeaturesOk);
  EXPECT_EQ(drv_->status() & kStatusFeaturesOk, 0);
  EXPECT_EQ(transport_->metrics().feature_rejects.load(), 2u);
  drv_->status(0);
  drv_->status(base);
  drv_->features(kFVersion1 | kNetFMac);
  drv_->status(base | kStatusFeaturesOk);
  EXPECT_NE(drv_->status() & kStatusFeaturesOk, 0);
}

TEST_F(Transport, BadQueuesStayDisabledAndDriverOkWithoutThemNeedsReset) {
  drv_->status(kStatusAcknowledge | kStatusDriver);
  drv_->features(kFVersion1);
  drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  EXPECT_FALSE(drv_->setup_queue(0, 12, kRxDesc, kRxAvail, kRxUsed, 1)) << "size not 2^n";
  EXPECT_FALSE(drv_->setup_queue(0, 16, 0x1000, kRxAvail, kRxUsed, 1)) << "ring outside RAM";
  EXPECT_FALSE(drv_->setup_queue(0, 16, kRxDesc, kRxAvail, kRam + kRamSize - 8, 1));
  EXPECT_FALSE(drv_->setup_queue(0, 16, kRxDesc + 4, kRxAvail, kRxUsed, 1)) << "misaligned";
  EXPECT_EQ(transport_->metrics().queue_rejects.load(), 4u);
  EXPECT_TRUE(drv_->setup_queue(0, 16, kRxDesc, kRxAvail, kRxUsed, 1));
  drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  EXPECT_NE(drv_->status() & kStatusNeedsReset, 0) << "queue 1 was never enabled";
  run();
  EXPECT_FALSE(net_->active());
  // Out-of-range queue selects and vectors are harmless.
  drv_->wr<uint16_t>(common::kQueueSelect, 999);
  EXPECT_EQ(drv_->rd<uint16_t>(common::kQueueSize), 0);
  drv_->wr<uint16_t>(common::kQueueSelect, 1);
  drv_->wr<uint16_t>(common::kQueueMsixVector, 77);
  EXPECT_EQ(drv_->rd<uint16_t>(common::kQueueMsixVector), kMsixNoVector);
}

TEST_F(Transport, MaskedVectorsAreHeldPendingAndFireOnUnmask) {
  bring_up();
  drv_->msix_entry(1, 0xFEE00000, 0x41, true);  // mask the RX vector
  transport_->signal_queue(0);
  EXPECT_EQ(msi_[1].triggers.load(), 0);
  EXPECT_EQ(drv_->rd<uint64_t>(VirtioPciTransport::kMsixPbaOff) & 2, 2u) << "pending bit";
  drv_->msix_entry(1, 0xFEE00000, 0x41, false);
  EXPECT_EQ(msi_[1].triggers.load(), 1);
  EXPECT_EQ(msi_[1].data, 0x41u);
  EXPECT_EQ(drv_->rd<uint64_t>(VirtioPciTransport::kMsixPbaOff), 0u);
  // The function mask holds every vector.
  drv_->msix_enable(kMsixCap, true, true);
  transport_->signal_queue(1);
  transport_->signal_config();
  EXPECT_EQ(msi_[2].triggers.load(), 0);
  drv_->msix_enable(kMsixCap, true, false);
  EXPECT_EQ(msi_[2].triggers.load(), 1);
  EXPECT_EQ(msi_[0].triggers.load(), 1);
  // An unusable message is refused and counted.
  drv_->msix_entry(2, 0x1000, 0x41, false);
  EXPECT_EQ(transport_->metrics().msi_rejects.load(), 1u);
}

TEST_F(Transport, GarbageRegisterAccessesAreCountedNotFatal) {
  drv_->wr<uint64_t>(0x7FF8, ~uint64_t{0});
  (void)drv_->rd<uint64_t>(0x6000);
  drv_->wr<uint8_t>(common::kDeviceFeature, 1);  // read-only, wrong width
  (void)drv_->rd<uint8_t>(common::kQueueSelect + 1);
  EXPECT_EQ(transport_->metrics().bad_access.load(), 4u);
}

TEST_F(Transport, ResetStopsTheDevice) {
  bring_up();
  drv_->status(0);
  run();
  EXPECT_FALSE(net_->active());
  EXPECT_EQ(drv_->status(), 0);
  bring_up();  // and it comes back
}

// Found by virtio_fuzz: DRIVER_OK cleared and set again (no reset) activated the device
// a second time with the queues as queue_enable left them; it sent a TX frame it had
// sent already and moved used.idx back.
TEST_F(Transport, AStatusWriteThatClearsABitIsIgnoredSoTheDeviceStartsOncePerReset) {
  bring_up();
  constexpr uint8_t kRunning =
      kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
  ram_.put(kBuf, VirtioNetHdr{});
  desc(kTxDesc, 0, kBuf, 12 + 60, 0);
  offer(kTxAvail, 0);
  kick(VirtioNet::kTxQueue);
  std::array<std::byte, 2048> got{};
  ASSERT_EQ(::recv(peer_, got.data(), got.size(), 0), 60);
  ASSERT_EQ(used_idx(kTxUsed), 1);
  drv_->status(kRunning & ~kStatusDriverOk);
  EXPECT_EQ(drv_->status(), kRunning) << "a cleared bit is not taken";
  drv_->status(kRunning);
  run();
  EXPECT_EQ(transport_->metrics().status_rejects.load(), 1u);
  EXPECT_EQ(transport_->metrics().activations.load(), 1u);
  EXPECT_EQ(::recv(peer_, got.data(), got.size(), 0), -1) << "no frame sent twice";
  EXPECT_EQ(used_idx(kTxUsed), 1);
  EXPECT_TRUE(net_->active());
  drv_->status(kRunning | kStatusFailed);  // adding a bit is fine
  EXPECT_EQ(drv_->status(), kRunning | kStatusFailed);
  bring_up();  // the reset is the way back
  EXPECT_EQ(transport_->metrics().activations.load(), 2u);
}

}  // namespace
}  // namespace labyrinth::devices::virtio
