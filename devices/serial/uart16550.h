// devices/serial/uart16550.h — the register model of a 16550A UART (COM1 at 0x3F8).
//
// Enough for Linux's 8250 driver and for polled use by the test guests: THR/RBR,
// IER, IIR/FCR, LCR (with DLAB and the divisor latch), MCR (with loopback), LSR, MSR,
// SCR. Transmission is instantaneous (THR is always empty); received bytes wait in
// a FIFO. Interrupts are edges on an IrqLine, raised when a cause appears:
// "received data available" (IER bit 0) and "THR empty" (IER bit 1).
//
//   FdOutput out(STDOUT_FILENO);                 // serial_console.h
//   auto uart = std::make_shared<Uart16550>(out, irq);
//   pio.insert(uart, LABYRINTH_PORT_COM1, 8);
//   uart->enqueue_input(bytes);                  // event loop: stdin -> guest
//
// Thread-safety: every entry point takes mu_ (vCPU threads and the event loop).
// Output and the IRQ edge happen under mu_, which keeps bytes in order; both are
// leaf operations (one write(2)). Lock order: Bus::devices_mu_ -> Uart16550::mu_.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/bus/bus.h"
#include "devices/irq_line.h"

namespace labyrinth::devices {

// Where transmitted bytes go.
class SerialOutput {
 public:
  virtual ~SerialOutput() = default;
  virtual void write(std::span<const uint8_t> bytes) = 0;
};

class Uart16550 final : public BusDevice {
 public:
  // Register offsets.
  enum : uint8_t {
    kData = 0,
    kIer = 1,
    kIir = 2,
    kFcr = 2,
    kLcr = 3,
    kMcr = 4,
    kLsr = 5,
    kMsr = 6,
    kScr = 7
  };
  // Bits.
  static constexpr uint8_t kIerRxData = 0x01, kIerThrEmpty = 0x02;
  static constexpr uint8_t kIirNone = 0x01, kIirThrEmpty = 0x02, kIirRxData = 0x04,
                           kIirFifoEnabled = 0xC0;
  static constexpr uint8_t kLcrDlab = 0x80;
  static constexpr uint8_t kMcrLoopback = 0x10;
  static constexpr uint8_t kLsrDataReady = 0x01, kLsrOverrun = 0x02, kLsrThrEmpty = 0x20,
                           kLsrIdle = 0x40;
  static constexpr uint8_t kMsrDefault = 0xB0;  // DCD | DSR | CTS
  static constexpr size_t kRxCapacity = 1024;

  Uart16550(SerialOutput& out, IrqLine& irq) : out_(out), irq_(irq) {}

  std::string_view label() const override { return "uart16550"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Host -> guest. Accepts up to rx_space() bytes; returns how many it took.
  size_t enqueue_input(std::span<const uint8_t> bytes);
  size_t rx_space() const;

 private:
  uint8_t read_reg(uint8_t reg);           // needs mu_
  void write_reg(uint8_t reg, uint8_t v);  // needs mu_
  uint8_t iir() const;                     // needs mu_
  void push_rx(uint8_t byte);              // needs mu_

  SerialOutput& out_;
  IrqLine& irq_;
  mutable std::mutex mu_;  // guards everything below
  uint8_t ier_ = 0;
  uint8_t lcr_ = 0x03;     // 8N1
  uint8_t mcr_ = 0x08;     // OUT2
  uint8_t lsr_extra_ = 0;  // sticky error bits (overrun), cleared by reading LSR
  uint8_t msr_ = kMsrDefault;
  uint8_t scr_ = 0;
  uint8_t fcr_ = 0;
  uint8_t dll_ = 0x0C;  // 9600 baud
  uint8_t dlm_ = 0;
  bool thr_empty_pending_ = false;  // THR-empty interrupt not yet acknowledged (IIR read)
  std::deque<uint8_t> rx_;
};

}  // namespace labyrinth::devices
