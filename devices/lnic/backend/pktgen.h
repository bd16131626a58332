// devices/lnic/backend/pktgen.h — generated traffic at a scheduled rate.
//
// Frames (struct lnic_pktgen_header + pattern payload, guest/abi/lnic.h) are due at
// t0 + k * (burst / rate); each is handed to the lnic with its scheduled time as
// t_ready, so latency is measured from when the frame *should* have arrived. If the
// event loop falls more than max_backlog frames behind, the excess is dropped as
// `overrun` (a NIC's FIFO overflowing), never queued without bound.
#pragma once

#include <array>
#include <optional>

#include "devices/lnic/backend/backend.h"
#include "devices/lnic/pacer.h"

namespace labyrinth::devices::lnic {

class PktgenBackend final : public Backend {
 public:
  PktgenBackend(boost::asio::io_context& io, const PktgenConfig& cfg);
  std::string_view name() const override { return "pktgen"; }
  void start(FrameSink& sink) override;
  void stop() override;
  // Frames the guest sends are discarded (the lnic counts them as tx_frames).
  bool transmit(std::span<const std::byte> frame) override;
  BackendStats stats() const override { return stats_; }
  bool finished() const override { return finished_; }
  bool starts_on_enable() const override { return true; }

 private:
  bool fire(uint64_t t_sched, uint64_t now);
  void build_frame(uint64_t seq, uint64_t t_sched);

  PktgenConfig cfg_;
  Pacer pacer_;
  FrameSink* sink_ = nullptr;
  std::array<std::byte, 4096> frame_{};
  uint64_t seq_ = 0;
  uint64_t end_tsc_ = 0;  // 0: no duration limit
  bool finished_ = false;
  BackendStats stats_;
};

}  // namespace labyrinth::devices::lnic
