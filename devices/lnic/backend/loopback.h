// devices/lnic/backend/loopback.h — every transmitted frame is received again.
//
// The frame is copied and delivered from a posted handler, never re-entrantly from
// inside transmit(): the lnic's TX path finishes before its RX path runs. At most
// kMaxQueued frames wait; more are dropped (transmit returns false).
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <vector>

#include "devices/lnic/backend/backend.h"

namespace labyrinth::devices::lnic {

class LoopbackBackend final : public Backend {
 public:
  static constexpr size_t kMaxQueued = 1024;
  explicit LoopbackBackend(boost::asio::io_context& io) : io_(io) {}
  std::string_view name() const override { return "loopback"; }
  void start(FrameSink& sink) override { sink_ = &sink; }
  void stop() override { sink_ = nullptr; }
  bool transmit(std::span<const std::byte> frame) override;

 private:
  void deliver();
  boost::asio::io_context& io_;
  FrameSink* sink_ = nullptr;
  std::deque<std::vector<std::byte>> queue_;
  bool posted_ = false;
};

}  // namespace labyrinth::devices::lnic
