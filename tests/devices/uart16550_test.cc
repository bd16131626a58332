#include "devices/serial/uart16550.h"

#include <gtest/gtest.h>

#include "tests/support/device_fakes.h"

namespace labyrinth::devices {
namespace {

class Uart16550Test : public ::testing::Test {
 protected:
  uint8_t in(uint8_t reg) {
    uint8_t v = 0;
    uart_.read(reg, std::span<uint8_t>(&v, 1));
    return v;
  }
  // The register's value under a mask (one call, so that clang-format 14 does not read
  // `in(reg) & mask` as a declaration).
  uint8_t in_bits(uint8_t reg, uint8_t mask) { return in(reg)&mask; }
  void out(uint8_t reg, uint8_t v) { uart_.write(reg, std::span<const uint8_t>(&v, 1)); }
  void input(std::string_view s) {
    uart_.enqueue_input(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }

  test::StringOutput output_;
  test::CountingIrq irq_;
  Uart16550 uart_{output_, irq_};
};
}  // namespace
}  // namespace labyrinth::devices

// Suite named after the class.
namespace labyrinth::devices::test {
namespace {
using Uart16550 = Uart16550Test;

TEST_F(Uart16550, TransmitsToOutput) {
  for (char c : std::string("hi\n")) out(devices::Uart16550::kData, static_cast<uint8_t>(c));
  EXPECT_EQ(output_.text, "hi\n");
  EXPECT_EQ(irq_.count.load(), 0) << "no interrupt while IER is 0";
}

TEST_F(Uart16550, LineStatusAlwaysReadyToSend) {
  const uint8_t lsr = in(devices::Uart16550::kLsr);
  EXPECT_EQ(lsr & 0x60, 0x60) << "THRE and TEMT";
  EXPECT_EQ(lsr & 0x01, 0) << "no data ready";
  input("x");
  EXPECT_EQ(in_bits(devices::Uart16550::kLsr, 0x01), 0x01);
}

TEST_F(Uart16550, DivisorLatchBehindDlab) {
  out(devices::Uart16550::kLcr, 0x83);   // DLAB | 8N1
  out(devices::Uart16550::kData, 0x01);  // DLL
  out(devices::Uart16550::kIer, 0x02);   // DLM
  EXPECT_EQ(in(devices::Uart16550::kData), 0x01);
  EXPECT_EQ(in(devices::Uart16550::kIer), 0x02);
  EXPECT_EQ(output_.text, "") << "DLL writes are not transmitted";
  out(devices::Uart16550::kLcr, 0x03);
  EXPECT_EQ(in(devices::Uart16550::kIer), 0x00) << "IER untouched by the DLM write";
  EXPECT_EQ(in(devices::Uart16550::kLcr), 0x03);
}

TEST_F(Uart16550, ReceiveFifoAndRxInterrupt) {
  out(devices::Uart16550::kIer, devices::Uart16550::kIerRxData);
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x01) << "nothing pending";
  input("ab");
  EXPECT_EQ(irq_.count.load(), 1) << "one edge when data arrives in an empty FIFO";
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x04) << "received data available";
  EXPECT_EQ(in(devices::Uart16550::kData), 'a');
  EXPECT_EQ(in(devices::Uart16550::kData), 'b');
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x01);
  EXPECT_EQ(in_bits(devices::Uart16550::kLsr, 0x01), 0);
  EXPECT_EQ(in(devices::Uart16550::kData), 0) << "empty FIFO reads 0";
}

TEST_F(Uart16550, RxInterruptWhenEnabledWithDataWaiting) {
  input("z");
  EXPECT_EQ(irq_.count.load(), 0);
  out(devices::Uart16550::kIer, devices::Uart16550::kIerRxData);
  EXPECT_EQ(irq_.count.load(), 1);
}

TEST_F(Uart16550, ThrEmptyInterruptAndAcknowledge) {
  out(devices::Uart16550::kIer, devices::Uart16550::kIerThrEmpty);
  EXPECT_EQ(irq_.count.load(), 1) << "enabling THRE raises it at once";
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x02);
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x01) << "reading IIR acknowledged it";
  out(devices::Uart16550::kData, 'x');
  EXPECT_EQ(irq_.count.load(), 2);
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0x0F), 0x02);
}

TEST_F(Uart16550, FifoControlAndScratch) {
  out(devices::Uart16550::kFcr, 0x01);
  EXPECT_EQ(in_bits(devices::Uart16550::kIir, 0xC0), 0xC0) << "FIFOs enabled";
  input("abc");
  out(devices::Uart16550::kFcr, 0x03);  // clear RX FIFO
  EXPECT_EQ(in_bits(devices::Uart16550::kLsr, 0x01), 0);
  out(devices::Uart16550::kScr, 0x5A);
  EXPECT_EQ(in(devices::Uart16550::kScr), 0x5A);
}

TEST_F(Uart16550, ModemStatusAndLoopback) {
  EXPECT_EQ(in(devices::Uart16550::kMsr), 0xB0) << "DCD, DSR, CTS";
  out(devices::Uart16550::kMcr, 0x10 | 0x0F);  // loopback, all outputs
  EXPECT_EQ(in(devices::Uart16550::kMsr), 0xF0);
  out(devices::Uart16550::kData, 'q');
  EXPECT_EQ(output_.text, "") << "loopback does not transmit";
  EXPECT_EQ(in(devices::Uart16550::kData), 'q');
}

TEST_F(Uart16550, RxOverflowSetsOverrun) {
  const std::string big(devices::Uart16550::kRxCapacity + 10, 'x');
  EXPECT_EQ(uart_.enqueue_input(
                std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(big.data()), big.size())),
            devices::Uart16550::kRxCapacity);
  EXPECT_EQ(uart_.rx_space(), 0u);
  // Loopback bytes beyond capacity are dropped and flagged.
  out(devices::Uart16550::kMcr, 0x10);
  out(devices::Uart16550::kData, 'y');
  EXPECT_EQ(in_bits(devices::Uart16550::kLsr, 0x02), 0x02);
  EXPECT_EQ(in_bits(devices::Uart16550::kLsr, 0x02), 0) << "cleared by reading LSR";
}

TEST_F(Uart16550, IgnoresWideAndOutOfRangeAccesses) {
  uint8_t two[2] = {0xAA, 0xAA};
  uart_.read(devices::Uart16550::kLsr, two);
  EXPECT_EQ(two[0], 0xAA);
  uart_.write(devices::Uart16550::kData, std::span<const uint8_t>(two, 2));
  uart_.write(9, std::span<const uint8_t>(two, 1));
  EXPECT_EQ(output_.text, "");
}

}  // namespace
}  // namespace labyrinth::devices::test
