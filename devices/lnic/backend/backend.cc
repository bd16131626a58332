#include "devices/lnic/backend/backend.h"

#include "devices/lnic/backend/loopback.h"
#include "devices/lnic/backend/pktgen.h"
#include "devices/lnic/backend/tap.h"
#include "devices/lnic/backend/udp.h"

namespace labyrinth::devices::lnic {

std::string_view to_string(BackendError e) noexcept {
  switch (e) {
    case BackendError::socket_failed:
      return "could not open/bind the UDP socket on 127.0.0.1";
    case BackendError::tun_failed:
      return "could not open /dev/net/tun or create the tap interface";
    case BackendError::bad_config:
      return "invalid backend configuration";
  }
  return "unknown backend error";
}

// The one place that knows every backend type: the lnic and vmm/ see only Backend.
std::expected<std::unique_ptr<Backend>, BackendError> make_backend(const BackendConfig& cfg,
                                                                   boost::asio::io_context& io) {
  switch (cfg.type) {
    case BackendType::loopback:
      return std::make_unique<LoopbackBackend>(io);
    case BackendType::pktgen:
      return std::make_unique<PktgenBackend>(io, cfg.pktgen);
    case BackendType::udp: {
      auto b = UdpBackend::create(io, cfg.udp);
      if (!b) return std::unexpected(b.error());
      return std::unique_ptr<Backend>(std::move(*b));
    }
    case BackendType::tap: {
      auto b = TapBackend::create(io, cfg.tap);
      if (!b) return std::unexpected(b.error());
      return std::unique_ptr<Backend>(std::move(*b));
    }
  }
  return std::unexpected(BackendError::bad_config);
}

}  // namespace labyrinth::devices::lnic
