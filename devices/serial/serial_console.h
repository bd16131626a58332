// devices/serial/serial_console.h — the host side of the serial port (event handling).
//
// FdOutput writes the guest's bytes to a file descriptor (stdout or a file), riding
// out EINTR and EAGAIN (stdout may be non-blocking when it shares a terminal with
// stdin), and turns itself off after a hard error such as EPIPE.
// StdinReader feeds the host's stdin into the UART's receive FIFO from the event
// loop (Boost.Asio): it waits for readability, reads at most what the FIFO can take,
// and stops at EOF. It does not start when stdin cannot be polled (a regular file,
// /dev/null) or is a terminal owned by another process group.
//
//   FdOutput out(STDOUT_FILENO);
//   Uart16550 uart(out, irq);
//   StdinReader in(io, uart);
//   in.start();
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "devices/serial/uart16550.h"

namespace labyrinth::devices {

class FdOutput final : public SerialOutput {
 public:
  // Does not take ownership of fd.
  explicit FdOutput(int fd) : fd_(fd) {}
  void write(std::span<const uint8_t> bytes) override;
  uint64_t bytes_written() const noexcept { return written_.load(std::memory_order_relaxed); }

 private:
  int fd_;
  bool failed_ = false;               // guarded by the caller's lock (the UART's mu_)
  std::atomic<uint64_t> written_{0};  // relaxed: a statistic
};

class StdinReader {
 public:
  StdinReader(boost::asio::io_context& io, Uart16550& uart, int fd = 0);
  ~StdinReader();
  // Returns false (and does nothing) when fd is not a pollable stream.
  bool start();

 private:
  void wait();
  void on_readable();

  Uart16550& uart_;
  int fd_;
  boost::asio::posix::stream_descriptor stream_;  // wraps a dup of fd (we never read via asio)
  boost::asio::steady_timer retry_;               // FIFO full: try again later
};

}  // namespace labyrinth::devices
