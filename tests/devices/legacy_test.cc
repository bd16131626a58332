#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <atomic>

#include "devices/irq_test/irq_test_device.h"
#include "devices/legacy/cmos.h"
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

uint8_t inb(BusDevice& dev, uint64_t offset) {
  uint8_t v = 0xEE;
  dev.read(offset, std::span<uint8_t>(&v, 1));
  return v;
}
void outb(BusDevice& dev, uint64_t offset, uint8_t v) {
  dev.write(offset, std::span<const uint8_t>(&v, 1));
}

TEST(I8042, AnswersTheCommandsLinuxProbesWith) {
  test::RecordingControl control;
  I8042 dev(control);
  constexpr uint64_t kCmd = LABYRINTH_PORT_I8042_CMD - I8042::kBase, kData = 0;
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, I8042::kStatusOutputFull);
  EXPECT_EQ(inb(dev, kData), I8042::kInitialCtr);
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0) << "reading the data empties it";
  outb(dev, kCmd, I8042::kCmdWriteCtr);
  outb(dev, kData, 0x65);
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kData), 0x65);
  outb(dev, kCmd, I8042::kCmdSelfTest);
  EXPECT_EQ(inb(dev, kData), 0x55);
  outb(dev, kCmd, I8042::kCmdKbdTest);
  EXPECT_EQ(inb(dev, kData), 0x00);
  outb(dev, kData, 0xF2);  // a keyboard command: no keyboard, no answer
  EXPECT_EQ(inb(dev, kCmd) & I8042::kStatusOutputFull, 0);
  outb(dev, kCmd, I8042::kCmdReadCtr);
  EXPECT_EQ(inb(dev, kData), 0x65) << "a keyboard byte is not a configuration byte";
  EXPECT_TRUE(control.statuses.empty());
}

TEST(Cmos, ReadsHostTimeInBcdAndNeverReportsAnUpdate) {
  // 2026-11-29 04:05:06 UTC, a Sunday.
  Cmos cmos([] { return std::time_t{1795925106}; });
  auto reg = [&](uint8_t index) {
    outb(cmos, 0, index | 0x80);  // NMI-disable bit set, as Linux does
    return inb(cmos, 1);
  };
  EXPECT_EQ(reg(0x00), 0x06);
  EXPECT_EQ(reg(0x02), 0x05);
  EXPECT_EQ(reg(0x04), 0x04);
  EXPECT_EQ(reg(0x06), 0x01);
  EXPECT_EQ(reg(0x07), 0x29);
  EXPECT_EQ(reg(0x08), 0x11);
  EXPECT_EQ(reg(0x09), 0x26);
  EXPECT_EQ(reg(0x32), 0x20);
  EXPECT_EQ(reg(Cmos::kStatusA) & 0x80, 0) << "update in progress must read clear";
  EXPECT_EQ(reg(Cmos::kStatusB), 0x02) << "24-hour, BCD";
  EXPECT_EQ(reg(Cmos::kStatusD), 0x80) << "time valid";
  // RAM keeps what is written; time registers do not.
  outb(cmos, 0, 0x40);
  outb(cmos, 1, 0xAB);
  EXPECT_EQ(reg(0x40), 0xAB);
  outb(cmos, 0, 0x00);
  outb(cmos, 1, 0x59);
  EXPECT_EQ(reg(0x00), 0x06);
  // Status B keeps interrupt enables but stays in BCD/24-hour format.
  outb(cmos, 0, Cmos::kStatusB);
  outb(cmos, 1, 0x46);
  EXPECT_EQ(reg(Cmos::kStatusB), 0x42);
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
