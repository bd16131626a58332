#include "devices/lnic/backend/loopback.h"

#include <boost/asio/post.hpp>

#include "allocator/measure/tsc.h"

namespace labyrinth::devices::lnic {

// Queued and delivered from a posted handler, not from inside transmit(): the lnic
// calls transmit from its TX path and must not be re-entered on its RX path. One post
// covers every frame queued until it runs; a full queue drops, as a NIC's FIFO would.
bool LoopbackBackend::transmit(std::span<const std::byte> frame) {
  if (sink_ == nullptr || queue_.size() >= kMaxQueued) return false;
  queue_.emplace_back(frame.begin(), frame.end());
  if (!posted_) {
    posted_ = true;
    boost::asio::post(io_, [this] { deliver(); });
  }
  return true;
}

// The whole queue as one batch: one flush, so one interrupt for it.
void LoopbackBackend::deliver() {
  posted_ = false;
  if (sink_ == nullptr) {
    queue_.clear();
    return;
  }
  while (!queue_.empty()) {
    sink_->receive(queue_.front(), measure::rdtsc());
    queue_.pop_front();
  }
  sink_->flush();
}

}  // namespace labyrinth::devices::lnic
