// devices/lnic/backend/backend.h — where an lnic's frames come from and go to.
//
// A backend lives on the device event loop. It delivers received frames to a
// FrameSink (the lnic's RX path, its "interrupt handler") and transmits the frames
// the guest sends. Backends: loopback, pktgen (generated traffic on a schedule),
// udp (a UDP socket on loopback: two labyrinth processes exchange frames) and tap
// (a real /dev/net/tun device).
//
//   auto be = make_backend(cfg, io).value();
//   be->start(lnic);              // frames now flow into lnic.receive(...)
//   be->transmit(bytes);          // from the lnic's TX path
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

namespace labyrinth::devices::lnic {

// The RX side of an lnic as a backend sees it. Event loop only.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // One frame is ready. t_ready: host TSC when it became ready (for generated traffic,
  // its scheduled arrival, so a late event loop shows up as latency, not as a gap).
  virtual void receive(std::span<const std::byte> frame, uint64_t t_ready) = 0;
  // End of a batch of receive() calls: the lnic raises one interrupt for the batch.
  virtual void flush() = 0;
};

struct PktgenConfig {
  double rate_pps = 10'000;     // frames per second (bursts included)
  uint32_t frame_size = 64;     // bytes, 40..4096 (the pktgen header is 40)
  uint32_t burst = 1;           // frames sharing one scheduled time
  double duration_s = 0;        // 0: until the VM stops
  uint64_t count = 0;           // 0: unlimited
  uint8_t pattern = 0xA5;       // payload byte i = pattern + i
  uint32_t spin_us = 50;        // busy-wait this close to a scheduled time (precision)
  uint32_t max_backlog = 4096;  // frames a stalled loop may owe before they are dropped
};

struct UdpConfig {
  uint16_t local_port = 0;  // bound on 127.0.0.1
  uint16_t peer_port = 0;   // frames are sent to 127.0.0.1:peer_port
};

struct TapConfig {
  std::string ifname;  // existing or new tap interface name (IFF_TAP | IFF_NO_PI)
};

enum class BackendType : uint8_t { loopback, pktgen, udp, tap };

struct BackendConfig {
  BackendType type = BackendType::loopback;
  PktgenConfig pktgen;
  UdpConfig udp;
  TapConfig tap;
};

enum class BackendError : uint8_t {
  socket_failed = 1,  // socket()/bind() failed (port in use, ...)
  tun_failed,         // /dev/net/tun open or TUNSETIFF failed
  bad_config,
};
std::string_view to_string(BackendError e) noexcept;

struct BackendStats {
  uint64_t generated = 0;        // pktgen: frames generated
  uint64_t overrun = 0;          // pktgen: frames dropped because the loop fell behind
  uint64_t rx_errors = 0;        // socket/tap read errors
  uint64_t tx_errors = 0;        // socket/tap write errors (frame dropped)
  uint64_t max_lateness_ns = 0;  // pktgen: worst lateness of a generated frame
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual void start(FrameSink& sink) = 0;
  virtual void stop() = 0;
  // Sends one frame. false: dropped (the caller counts it).
  virtual bool transmit(std::span<const std::byte> frame) = 0;
  virtual BackendStats stats() const { return {}; }
  // pktgen: true once its duration/count is exhausted.
  virtual bool finished() const { return false; }
  // Generated traffic starts when the guest enables the NIC, not at VM start (frames
  // before then could only be dropped, and a count= run would be over before it began).
  virtual bool starts_on_enable() const { return false; }
};

std::expected<std::unique_ptr<Backend>, BackendError> make_backend(const BackendConfig& cfg,
                                                                   boost::asio::io_context& io);

}  // namespace labyrinth::devices::lnic
