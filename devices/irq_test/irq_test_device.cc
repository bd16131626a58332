#include "devices/irq_test/irq_test_device.h"

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace labyrinth::devices {

uint64_t IrqTrain::request(uint64_t n) {
  // Admit at most kMaxPending outstanding interrupts.
  uint64_t cur = accepted_.load(std::memory_order_relaxed);
  uint64_t take = 0;
  do {
    take = std::min(n, kMaxPending - std::min(cur, kMaxPending));
  } while (take > 0 && !accepted_.compare_exchange_weak(cur, cur + take,
                                                        std::memory_order_relaxed));
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

void IrqTrain::tick(const boost::system::error_code& ec) {
  if (ec) return;  // cancelled: the VM is going away
  irq_.trigger();
  raised_.fetch_add(1, std::memory_order_relaxed);
  accepted_.fetch_sub(1, std::memory_order_relaxed);
  if (--remaining_ == 0) {
    running_ = false;
    return;
  }
  // Next deadline from the previous one, so the period does not drift.
  timer_.expires_at(timer_.expiry() + kPeriod);
  timer_.async_wait([this](const boost::system::error_code& e) { tick(e); });
}

void IrqTestDevice::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset != 0) return;
  const uint32_t v = static_cast<uint32_t>(train_.raised());
  std::memcpy(data.data(), &v, std::min(data.size(), sizeof(v)));
}

void IrqTestDevice::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty()) return;
  uint32_t n = 0;
  std::memcpy(&n, data.data(), std::min(data.size(), sizeof(n)));
  if (n > 0) train_.request(n);
}

}  // namespace labyrinth::devices
