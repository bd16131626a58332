// devices/lnic/backend/tap.h — a real TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI).
//
// Every Ethernet frame the host kernel sends into the tap interface becomes a received
// frame; transmit() writes one frame to it. The interface is opened (or created: it is
// then removed when the fd closes) by devices/net/tap.h, the opener virtio-net uses too;
// bringing it up and addressing it is the user's (or the test's) business, as with
// Firecracker's and QEMU's tap backends.
#pragma once

#include <array>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "devices/lnic/backend/backend.h"

namespace labyrinth::devices::lnic {

class TapBackend final : public Backend {
 public:
  static std::expected<std::unique_ptr<TapBackend>, BackendError> create(
      boost::asio::io_context& io, const TapConfig& cfg);
  std::string_view name() const override { return "tap"; }
  void start(FrameSink& sink) override;
  void stop() override;
  bool transmit(std::span<const std::byte> frame) override;
  BackendStats stats() const override { return stats_; }
  const std::string& ifname() const { return ifname_; }

 private:
  TapBackend(boost::asio::posix::stream_descriptor fd, std::string ifname)
      : fd_(std::move(fd)), ifname_(std::move(ifname)) {}
  void arm();
  boost::asio::posix::stream_descriptor fd_;
  std::string ifname_;
  std::array<std::byte, 65536> buf_{};
  FrameSink* sink_ = nullptr;
  BackendStats stats_;
};

}  // namespace labyrinth::devices::lnic
