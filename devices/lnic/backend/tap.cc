#include "devices/lnic/backend/tap.h"

#include <unistd.h>

#include <cerrno>

#include "allocator/measure/tsc.h"
#include "devices/net/tap.h"

namespace labyrinth::devices::lnic {

std::expected<std::unique_ptr<TapBackend>, BackendError> TapBackend::create(
    boost::asio::io_context& io, const TapConfig& cfg) {
  auto tap = open_tap(cfg.ifname);
  if (!tap) {
    return std::unexpected(tap.error().kind == TapError::Kind::bad_name ? BackendError::bad_config
                                                                        : BackendError::tun_failed);
  }
  std::string ifname = tap->name();
  boost::asio::posix::stream_descriptor sd(io, tap->release());  // owns the fd from here
  return std::unique_ptr<TapBackend>(new TapBackend(std::move(sd), std::move(ifname)));
}

void TapBackend::start(FrameSink& sink) {
  sink_ = &sink;
  arm();
}

void TapBackend::stop() {
  sink_ = nullptr;
  boost::system::error_code ec;
  (void)fd_.cancel(ec);
}

void TapBackend::arm() {
  fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) {
                   if (ec || sink_ == nullptr) return;
                   for (int i = 0; i < 256; ++i) {
                     const ssize_t n = ::read(fd_.native_handle(), buf_.data(), buf_.size());
                     if (n < 0) {
                       if (errno != EAGAIN && errno != EINTR) ++stats_.rx_errors;
                       break;
                     }
                     if (n == 0) break;
                     sink_->receive(std::span(buf_.data(), static_cast<size_t>(n)),
                                    measure::rdtsc());
                   }
                   sink_->flush();
                   arm();
                 });
}

bool TapBackend::transmit(std::span<const std::byte> frame) {
  const ssize_t n = ::write(fd_.native_handle(), frame.data(), frame.size());
  if (n != static_cast<ssize_t>(frame.size())) {
    ++stats_.tx_errors;  // interface down (EIO) or queue full (EAGAIN): dropped
    return false;
  }
  return true;
}

}  // namespace labyrinth::devices::lnic
