#include "devices/irq_test/irq_test_device.h"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "guest/abi/ports.h"

namespace labyrinth::devices {

// On a vCPU thread: admit what fits under kMaxPending with a CAS (several vCPUs may
// ask at once), then hand the count to the event loop, which alone runs the train.
uint64_t IrqTrain::request(uint64_t n) {
  // Admit at most kMaxPending outstanding interrupts.
  uint64_t cur = accepted_.load(std::memory_order_relaxed);
  uint64_t take = 0;
  do {
    take = std::min(n, kMaxPending - std::min(cur, kMaxPending));
  } while (take > 0 &&
           !accepted_.compare_exchange_weak(cur, cur + take, std::memory_order_relaxed));
  if (take < n) spdlog::warn("irq-test: request for {} interrupts capped to {}", n, take);
  if (take == 0) return 0;
  boost::asio::post(io_, [this, take] {
    remaining_ += take;
    if (!running_) {
      running_ = true;
      timer_.expires_after(kPeriod);
      timer_.async_wait([this](const boost::system::error_code& ec) { tick(ec); });
    }
  });
  return take;
}

// On the event loop: one edge, then the wait for the guest's ack, so that no two
// edges merge in the IOAPIC and the guest can count every one.
void IrqTrain::tick(const boost::system::error_code& ec) {
  if (ec) return;  // cancelled: the VM is going away
  irq_.trigger();
  last_raise_ = std::chrono::steady_clock::now();
  raised_.fetch_add(1, std::memory_order_relaxed);
  accepted_.fetch_sub(1, std::memory_order_relaxed);
  if (--remaining_ == 0) {
    running_ = false;
    return;
  }
  // Wait for the guest's ack (or the timeout) before the next edge.
  awaiting_ack_ = true;
  ack_timer_.expires_after(kAckTimeout);
  ack_timer_.async_wait([this](const boost::system::error_code& e) {
    if (e || !awaiting_ack_) return;
    spdlog::warn("irq-test: no ack from the guest within {} ms; raising the next anyway",
                 kAckTimeout.count());
    awaiting_ack_ = false;
    schedule_next();
  });
}

// From a vCPU thread: the ack state belongs to the event loop, so post rather than touch.
void IrqTrain::ack() {
  boost::asio::post(io_, [this] {
    if (!awaiting_ack_) return;  // unsolicited ack: ignore
    awaiting_ack_ = false;
    ack_timer_.cancel();
    schedule_next();
  });
}

void IrqTrain::schedule_next() {
  timer_.expires_at(last_raise_ + kPeriod);  // at least kPeriod after the previous edge
  timer_.async_wait([this](const boost::system::error_code& e) { tick(e); });
}

void IrqTestDevice::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset != 0) return;  // the ack register reads as 0
  const uint32_t v = static_cast<uint32_t>(train_.raised());
  std::memcpy(data.data(), &v, std::min(data.size(), sizeof(v)));
}

void IrqTestDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == LABYRINTH_PORT_IRQ_TEST_ACK - LABYRINTH_PORT_IRQ_TEST) {
    train_.ack();
    return;
  }
  if (offset != 0 || data.empty()) return;
  uint32_t n = 0;
  std::memcpy(&n, data.data(), std::min(data.size(), sizeof(n)));
  if (n > 0) train_.request(n);
}

}  // namespace labyrinth::devices
