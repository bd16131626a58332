#include "devices/lnic/pacer.h"

#include <chrono>

#include <boost/asio/post.hpp>

#include "allocator/measure/tsc.h"

namespace labyrinth::devices::lnic {

// Each start and stop bumps generation_: a timer or post of an earlier run that is
// still queued sees the mismatch and does nothing.
void Pacer::start(Fire fire) {
  fire_ = std::move(fire);
  running_ = true;
  ++generation_;
  next_ = measure::rdtsc();
  step();
}

void Pacer::stop() {
  running_ = false;
  ++generation_;
  timer_.cancel();
}

void Pacer::step() {
  if (!running_) return;
  const uint64_t gen = generation_;
  // Fire every slot that is due; yield to the loop after a bounded number.
  uint64_t now = measure::rdtsc();
  for (int fired = 0; now >= next_ && fired < 256; ++fired) {
    const uint64_t t = next_;
    next_ += period_;
    if (!fire_(t, now)) {
      running_ = false;
      return;
    }
    if (!running_ || gen != generation_) return;
    now = measure::rdtsc();
  }
  // Sleep on the timer until spin_ before the next slot, then busy-post to the loop:
  // the timer alone wakes too late for microsecond periods, spinning alone burns a CPU.
  if (next_ > now + spin_) {
    const auto& clk = measure::TscClock::instance();
    const auto wait =
        std::chrono::nanoseconds(static_cast<int64_t>(clk.to_ns(next_ - now - spin_)));
    timer_.expires_after(wait);
    timer_.async_wait([this, gen](const boost::system::error_code& ec) {
      if (!ec && gen == generation_) step();
    });
  } else {
    boost::asio::post(io_, [this, gen] {
      if (gen == generation_) step();
    });
  }
}

}  // namespace labyrinth::devices::lnic
