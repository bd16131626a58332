#include "devices/lnic/backend/udp.h"

#include "allocator/measure/tsc.h"

namespace labyrinth::devices::lnic {

namespace ip = boost::asio::ip;

// Loopback only: the backend is a test and demo link between two local processes, not
// a way onto the network. Non-blocking so the drain loop in arm() stops at empty.
std::expected<std::unique_ptr<UdpBackend>, BackendError> UdpBackend::create(
    boost::asio::io_context& io, const UdpConfig& cfg) {
  boost::system::error_code ec;
  ip::udp::socket s(io);
  (void)s.open(ip::udp::v4(), ec);
  if (ec) return std::unexpected(BackendError::socket_failed);
  (void)s.bind(ip::udp::endpoint(ip::address_v4::loopback(), cfg.local_port), ec);
  if (ec) return std::unexpected(BackendError::socket_failed);
  (void)s.non_blocking(true, ec);
  if (ec) return std::unexpected(BackendError::socket_failed);
  return std::unique_ptr<UdpBackend>(
      new UdpBackend(std::move(s), ip::udp::endpoint(ip::address_v4::loopback(), cfg.peer_port)));
}

uint16_t UdpBackend::local_port() const {
  boost::system::error_code ec;
  return socket_.local_endpoint(ec).port();
}

void UdpBackend::start(FrameSink& sink) {
  sink_ = &sink;
  arm();
}

void UdpBackend::stop() {
  sink_ = nullptr;
  boost::system::error_code ec;
  (void)socket_.cancel(ec);
}

// Re-armed after each drain: one wait per batch, not per datagram. stop() ends it by
// cancelling the wait and clearing sink_.
void UdpBackend::arm() {
  socket_.async_wait(ip::udp::socket::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || sink_ == nullptr) return;
    // Drain what is queued (non-blocking), one interrupt for the batch.
    for (int i = 0; i < 256; ++i) {
      boost::system::error_code rec;
      const size_t n = socket_.receive_from(boost::asio::buffer(buf_), from_, 0, rec);
      if (rec == boost::asio::error::would_block) break;
      if (rec) {
        ++stats_.rx_errors;
        break;
      }
      sink_->receive(std::span(buf_.data(), n), measure::rdtsc());
    }
    sink_->flush();
    arm();
  });
}

bool UdpBackend::transmit(std::span<const std::byte> frame) {
  boost::system::error_code ec;
  socket_.send_to(boost::asio::buffer(frame.data(), frame.size()), peer_, 0, ec);
  if (ec) {
    ++stats_.tx_errors;  // no peer yet (ECONNREFUSED), buffer full: the frame is dropped
    return false;
  }
  return true;
}

}  // namespace labyrinth::devices::lnic
