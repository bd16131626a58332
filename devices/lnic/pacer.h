// devices/lnic/pacer.h — calls a function at scheduled TSC times on the event loop.
//
//   Pacer pacer(io, period_ticks, spin_ticks);
//   pacer.start([&](uint64_t t_sched, uint64_t now) { ...; return true; /* continue */ });
//
// Slot k is due at t0 + k * period. The pacer sleeps on an Asio timer until
// spin_ticks before the next slot, then re-posts itself (other handlers of the loop
// keep running in between) and fires each slot as soon as the TSC reaches it. A slot
// that is late fires late with its *scheduled* time, so lateness is measured, not
// hidden (no coordinated omission). Event loop only.
#pragma once

#include <cstdint>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace labyrinth::devices::lnic {

class Pacer {
 public:
  // fire(t_sched, now) returns false to stop.
  using Fire = std::function<bool(uint64_t t_sched, uint64_t now)>;

  Pacer(boost::asio::io_context& io, uint64_t period_ticks, uint64_t spin_ticks)
      : io_(io), timer_(io), period_(period_ticks ? period_ticks : 1), spin_(spin_ticks) {}
  void start(Fire fire);
  void stop();
  // Skips slots that are hopelessly late (the caller counted them as dropped).
  void skip_to(uint64_t slot_time) { next_ = slot_time; }
  uint64_t period() const { return period_; }

 private:
  void step();
  boost::asio::io_context& io_;
  boost::asio::steady_timer timer_;
  uint64_t period_;
  uint64_t spin_;
  uint64_t next_ = 0;
  bool running_ = false;
  uint64_t generation_ = 0;  // invalidates posted steps after stop()
  Fire fire_;
};

}  // namespace labyrinth::devices::lnic
