#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>

#include "devices/irq_test/irq_test_device.h"
#include "devices/legacy/exit_device.h"
#include "devices/legacy/i8042.h"
#include "guest/abi/ports.h"
#include "tests/devices/fakes.h"

namespace labyrinth::devices {
namespace {

TEST(ExitDevice, WriteEndsTheVmWithLowByte) {
  test::RecordingControl control;
  ExitDevice dev(control);
  const uint32_t v = 0x1234;
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));  // outl
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0x34);
  dev.write(1, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 1));
  EXPECT_EQ(control.statuses.size(), 1u) << "only offset 0 is the port";
}

TEST(I8042, ResetIsACleanShutdown) {
  test::RecordingControl control;
  I8042 dev(control);
  uint8_t status = 0xFF;
  dev.read(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<uint8_t>(&status, 1));
  EXPECT_EQ(status & 0x03, 0) << "both buffers empty";
  const uint8_t other = 0xAD;
  dev.write(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<const uint8_t>(&other, 1));
  EXPECT_TRUE(control.statuses.empty());
  const uint8_t reset = LABYRINTH_I8042_RESET;
  dev.write(0, std::span<const uint8_t>(&reset, 1));  // data port: not a reset
  EXPECT_TRUE(control.statuses.empty());
  dev.write(LABYRINTH_PORT_I8042_CMD - I8042::kBase, std::span<const uint8_t>(&reset, 1));
  ASSERT_EQ(control.statuses.size(), 1u);
  EXPECT_EQ(control.statuses[0], 0);
}

// An interrupt line whose "guest" acks every interrupt it receives.
struct AckingIrq final : IrqLine {
  IrqTestDevice* dev = nullptr;
  std::atomic<int> count{0};
  void trigger() override {
    count.fetch_add(1);
    const uint32_t one = 1;
    dev->write(LABYRINTH_PORT_IRQ_TEST_ACK - LABYRINTH_PORT_IRQ_TEST,
               std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&one), 4));
  }
};

TEST(IrqTestDevice, RaisesAckedInterruptsAtLeastAMillisecondApart) {
  boost::asio::io_context io;
  AckingIrq irq;
  IrqTrain train(io, irq);
  IrqTestDevice dev(train);
  irq.dev = &dev;
  const uint32_t n = 20;
  const auto t0 = std::chrono::steady_clock::now();
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&n), 4));
  io.run();  // returns when the train is done
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(irq.count.load(), 20);
  EXPECT_EQ(train.raised(), 20u);
  EXPECT_GE(took, std::chrono::milliseconds(19));
  uint32_t raised = 0;
  dev.read(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&raised), 4));
  EXPECT_EQ(raised, 20u);
}

TEST(IrqTestDevice, WaitsForTheAckBeforeTheNextEdge) {
  boost::asio::io_context io;
  test::CountingIrq irq;  // never acks
  IrqTrain train(io, irq);
  IrqTestDevice dev(train);
  const uint32_t n = 3;
  dev.write(0, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&n), 4));
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(irq.count.load(), 1) << "a second edge without an ack could merge with the first";
  const uint32_t one = 1;
  dev.write(4, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&one), 4));  // ack
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(irq.count.load(), 2);
}

TEST(IrqTestDevice, CapsUntrustedCounts) {
  boost::asio::io_context io;
  test::CountingIrq irq;
  IrqTrain train(io, irq);
  EXPECT_EQ(train.request(UINT32_MAX), IrqTrain::kMaxPending);
  EXPECT_EQ(train.request(5), 0u) << "nothing more while the cap is reached";
  // Nothing runs unless the event loop does; destroying it cancels the train.
}

}  // namespace
}  // namespace labyrinth::devices
