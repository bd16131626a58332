#include "devices/lnic/backend/pktgen.h"

#include <algorithm>
#include <cstring>

#include "allocator/measure/tsc.h"
#include "guest/abi/lnic.h"

namespace labyrinth::devices::lnic {

namespace {
// One pacer slot per burst: rate_pps / burst slots a second, in TSC ticks (never 0, so
// a huge rate cannot make the pacer spin on one slot forever).
uint64_t period_ticks(const PktgenConfig& cfg) {
  const auto& clk = measure::TscClock::instance();
  const double ns = 1e9 * std::max<uint32_t>(cfg.burst, 1) / std::max(cfg.rate_pps, 1e-3);
  return std::max<uint64_t>(clk.from_ns(ns), 1);
}
}  // namespace

PktgenBackend::PktgenBackend(boost::asio::io_context& io, const PktgenConfig& cfg)
    : cfg_(cfg),
      pacer_(io, period_ticks(cfg), measure::TscClock::instance().from_ns(cfg.spin_us * 1000.0)) {
  cfg_.frame_size = std::clamp<uint32_t>(cfg_.frame_size, sizeof(lnic_pktgen_header), 4096);
  cfg_.burst = std::max<uint32_t>(cfg_.burst, 1);
  // Payload: byte i after the header is pattern + i (fixed per generator).
  for (size_t i = sizeof(lnic_pktgen_header); i < cfg_.frame_size; ++i) {
    frame_[i] = static_cast<std::byte>(
        static_cast<uint8_t>(cfg_.pattern + (i - sizeof(lnic_pktgen_header))));
  }
}

// Only the header changes per frame; the payload pattern was written once.
void PktgenBackend::build_frame(uint64_t seq, uint64_t t_sched) {
  lnic_pktgen_header h{};
  std::memset(h.dst_mac, 0xFF, sizeof h.dst_mac);
  const uint8_t src[6] = {0x02, 0x4C, 0x42, 0x00, 0x00, 0x01};
  std::memcpy(h.src_mac, src, sizeof src);
  // Network byte order on the wire; the struct field is host (little-endian) order.
  h.ethertype =
      static_cast<uint16_t>((LNIC_PKTGEN_ETHERTYPE >> 8) | ((LNIC_PKTGEN_ETHERTYPE & 0xFF) << 8));
  h.magic = LNIC_PKTGEN_MAGIC;
  h.seq = seq;
  h.t_sched = t_sched;
  h.pattern = cfg_.pattern;
  std::memcpy(frame_.data(), &h, sizeof h);
}

void PktgenBackend::start(FrameSink& sink) {
  sink_ = &sink;
  finished_ = false;
  const auto& clk = measure::TscClock::instance();
  end_tsc_ = cfg_.duration_s > 0 ? measure::rdtsc() + clk.from_ns(cfg_.duration_s * 1e9) : 0;
  pacer_.start([this](uint64_t t_sched, uint64_t now) { return fire(t_sched, now); });
}

void PktgenBackend::stop() {
  pacer_.stop();
  sink_ = nullptr;
}

// One pacer slot: a burst stamped with its scheduled time, not the time it went out,
// so the latency the guest measures includes any lateness of the host. Returns false
// to stop the pacer (duration or count reached, or stopped).
bool PktgenBackend::fire(uint64_t t_sched, uint64_t now) {
  if (sink_ == nullptr) return false;
  if ((end_tsc_ != 0 && t_sched >= end_tsc_) || (cfg_.count != 0 && seq_ >= cfg_.count)) {
    finished_ = true;
    return false;
  }
  // Fallen too far behind: drop the slots we cannot honour, as a NIC FIFO would.
  const uint64_t behind = (now - t_sched) / pacer_.period() * cfg_.burst;
  if (behind > cfg_.max_backlog) {
    const uint64_t skip_slots = (behind - cfg_.max_backlog) / cfg_.burst;
    stats_.overrun += skip_slots * cfg_.burst;
    seq_ += skip_slots * cfg_.burst;
    pacer_.skip_to(t_sched + (skip_slots + 1) * pacer_.period());
    t_sched += skip_slots * pacer_.period();
  }
  const auto& clk = measure::TscClock::instance();
  stats_.max_lateness_ns =
      std::max<uint64_t>(stats_.max_lateness_ns, static_cast<uint64_t>(clk.to_ns(now - t_sched)));
  for (uint32_t b = 0; b < cfg_.burst; ++b) {
    if (cfg_.count != 0 && seq_ >= cfg_.count) break;
    build_frame(seq_++, t_sched);
    ++stats_.generated;
    sink_->receive(std::span(frame_.data(), cfg_.frame_size), t_sched);
  }
  sink_->flush();
  return true;
}

// A generator is a source only: what the guest sends is accepted and dropped.
bool PktgenBackend::transmit(std::span<const std::byte> frame) {
  (void)frame;
  return true;
}

}  // namespace labyrinth::devices::lnic
