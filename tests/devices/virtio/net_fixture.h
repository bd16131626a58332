// tests/devices/virtio/net_fixture.h — a VirtioNet behind a VirtioPciTransport, its
// "TAP" one end of a SOCK_SEQPACKET socketpair (one read = one frame, as on a TAP),
// queues in a FakeRam, recording MSI lines.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "tests/devices/virtio/driver.h"
#include "tests/support/device_fakes.h"

namespace labyrinth::devices::test {

class NetFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kRam = 0x100000, kRamSize = 0x100000;
  static constexpr uint16_t kQ = 16;
  // RX queue rings at +0x0000.., TX at +0x8000..; buffers from +0x20000.
  static constexpr uint64_t kRxDesc = kRam, kRxAvail = kRam + 0x1000, kRxUsed = kRam + 0x2000;
  static constexpr uint64_t kTxDesc = kRam + 0x8000, kTxAvail = kRam + 0x9000,
                            kTxUsed = kRam + 0xA000;
  static constexpr uint64_t kBuf = kRam + 0x20000;
  static constexpr uint8_t kMsixCap = 0x84;

  NetFixture() : ram_(kRam, kRamSize) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = sv[1];
    net_ = std::make_shared<virtio::VirtioNet>(
        virtio::NetConfig{"eth0", {0x02, 0x00, 0x00, 0x00, 0x00, 0x2A}}, io_, TapFd(sv[0], "test"));
    transport_ = std::make_shared<virtio::VirtioPciTransport>(
        net_, ram_, 0xD1000000u, std::vector<MsiLine*>{&msi_[0], &msi_[1], &msi_[2]});
    drv_ = std::make_unique<Driver>(*transport_);
  }
  ~NetFixture() override {
    net_->stop();
    io_.poll();
    ::close(peer_);
  }

  // The Linux sequence up to DRIVER_OK: vectors 0 config, 1 RX, 2 TX.
  void bring_up() {
    using namespace virtio;
    drv_->status(0);
    drv_->status(kStatusAcknowledge | kStatusDriver);
    drv_->features(kFVersion1 | kNetFMac | kNetFStatus);
    drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    ASSERT_NE(drv_->status() & kStatusFeaturesOk, 0);
    drv_->msix_enable(kMsixCap, true);
    for (uint16_t v = 0; v < 3; ++v) drv_->msix_entry(v, 0xFEE00000, 0x30 + v, false);
    drv_->wr<uint16_t>(common::kMsixConfig, 0);
    ASSERT_TRUE(drv_->setup_queue(0, kQ, kRxDesc, kRxAvail, kRxUsed, 1));
    ASSERT_TRUE(drv_->setup_queue(1, kQ, kTxDesc, kTxAvail, kTxUsed, 2));
    drv_->status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    io_.poll();
    io_.restart();
    ASSERT_TRUE(net_->active());
  }
  void desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
            uint16_t next = 0) {
    ram_.put(table + 16 * i, virtio::VirtqDesc{addr, len, flags, next});
  }
  void offer(uint64_t avail, uint16_t head) {
    const uint16_t idx = ram_.get<uint16_t>(avail + 2);
    ram_.put<uint16_t>(avail + 4 + 2 * (idx % kQ), head);
    ram_.put<uint16_t>(avail + 2, idx + 1);
  }
  uint16_t used_idx(uint64_t used) { return ram_.get<uint16_t>(used + 2); }
  virtio::VirtqUsedElem used(uint64_t used, uint16_t i) {
    return ram_.get<virtio::VirtqUsedElem>(used + 4 + 8 * (i % kQ));
  }
  void kick(uint16_t q) {
    drv_->wr<uint16_t>(virtio::VirtioPciTransport::kNotifyOff + 4 * q, q);
    run();
  }
  void run() {
    io_.poll();
    io_.restart();
  }

  boost::asio::io_context io_;
  FakeRam ram_;
  std::array<RecordingMsi, 3> msi_;
  int peer_ = -1;
  std::shared_ptr<virtio::VirtioNet> net_;
  std::shared_ptr<virtio::VirtioPciTransport> transport_;
  std::unique_ptr<Driver> drv_;
};

}  // namespace labyrinth::devices::test
