// devices/lnic/backend/udp.h — frames as UDP datagrams on loopback.
//
// Bound to 127.0.0.1:local_port; transmit() sends each frame as one datagram to
// 127.0.0.1:peer_port, and every datagram received becomes one frame. Two labyrinth
// processes with mirrored ports exchange frames. Only loopback addresses are used.
#pragma once

#include <array>

#include <boost/asio/ip/udp.hpp>

#include "devices/lnic/backend/backend.h"

namespace labyrinth::devices::lnic {

class UdpBackend final : public Backend {
 public:
  static std::expected<std::unique_ptr<UdpBackend>, BackendError> create(
      boost::asio::io_context& io, const UdpConfig& cfg);
  std::string_view name() const override { return "udp"; }
  void start(FrameSink& sink) override;
  void stop() override;
  bool transmit(std::span<const std::byte> frame) override;
  BackendStats stats() const override { return stats_; }
  uint16_t local_port() const;

 private:
  UdpBackend(boost::asio::ip::udp::socket socket, const boost::asio::ip::udp::endpoint& peer)
      : socket_(std::move(socket)), peer_(peer) {}
  void arm();
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::endpoint peer_;
  boost::asio::ip::udp::endpoint from_;
  std::array<std::byte, 65536> buf_{};
  FrameSink* sink_ = nullptr;
  BackendStats stats_;
};

}  // namespace labyrinth::devices::lnic
