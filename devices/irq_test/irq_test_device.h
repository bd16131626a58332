// devices/irq_test/irq_test_device.h — the interrupt test device (LABYRINTH_PORT_IRQ_TEST).
//
// A guest OUT of N asks for N interrupts on LABYRINTH_IRQ_TEST_GSI, at least a
// millisecond apart, each raised only after the guest acked the previous one
// (LABYRINTH_PORT_IRQ_TEST_ACK) or 5 s passed: edges never merge in the IOAPIC (the
// timeout is long because a guest on an oversubscribed host — the one-CPU TCG test VM
// under a sanitizer build — can take over a second to ack). The port side
// (IrqTestDevice, on vCPU threads) validates N and hands the request to the event-loop side
// (IrqTrain, an Asio timer). N is untrusted: the outstanding total is capped at kMaxPending; excess
// is dropped and logged. Reading the port returns the number of interrupts raised so far (low 32
// bits).
//
//   IrqTrain train(io, irqfd);
//   pio.insert(std::make_shared<IrqTestDevice>(train), LABYRINTH_PORT_IRQ_TEST, 4);
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "devices/bus/bus.h"
#include "devices/irq_line.h"

namespace labyrinth::devices {

// Raises a line periodically on the event loop.
class IrqTrain {
 public:
  static constexpr uint64_t kMaxPending = 1'000'000;
  static constexpr std::chrono::microseconds kPeriod{1000};

  IrqTrain(boost::asio::io_context& io, IrqLine& irq) : io_(io), irq_(irq), timer_(io) {}
  static constexpr std::chrono::milliseconds kAckTimeout{5000};

  // Thread-safe: posts to the event loop. Returns how many were accepted.
  uint64_t request(uint64_t n);
  // The guest counted the last interrupt (thread-safe: posts to the event loop).
  void ack();
  uint64_t raised() const noexcept { return raised_.load(std::memory_order_relaxed); }

 private:
  void tick(const boost::system::error_code& ec);  // event loop only
  void schedule_next();                            // event loop only

  boost::asio::io_context& io_;
  IrqLine& irq_;
  boost::asio::steady_timer timer_;                     // event loop only
  uint64_t remaining_ = 0;                              // event loop only
  bool running_ = false;                                // event loop only
  bool awaiting_ack_ = false;                           // event loop only
  std::chrono::steady_clock::time_point last_raise_{};  // event loop only
  boost::asio::steady_timer ack_timer_{io_};            // event loop only: ack timeout
  std::atomic<uint64_t> accepted_{0};  // requested minus raised, bounded by kMaxPending;
                                       // relaxed: admission only, the post orders the work
  std::atomic<uint64_t> raised_{0};    // relaxed: a statistic
};

class IrqTestDevice final : public BusDevice {
 public:
  explicit IrqTestDevice(IrqTrain& train) : train_(train) {}
  std::string_view label() const override { return "irq-test"; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  IrqTrain& train_;
};

}  // namespace labyrinth::devices
