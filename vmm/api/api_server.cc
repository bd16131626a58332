// The API's Unix-socket HTTP server; see api_server.h.
#include "vmm/api/api_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "vmm/fd.h"
#include "vmm/sandbox/seccomp.h"

namespace labyrinth::vmm::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

namespace {

// ECONNREFUSED: a socket file nobody listens on (a killed Labyrinth's). Anything else —
// a listener, a file that is not a socket, no permission — is not ours to remove.
std::expected<void, ServerError> clear_stale(const std::string& path) {
  struct stat st = {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(ServerError{true, path + ": " + std::strerror(errno)});
  }
  if (!S_ISSOCK(st.st_mode)) {
    return std::unexpected(ServerError{true, path + ": exists and is not a socket"});
  }
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe)
    return std::unexpected(ServerError{false, std::string("socket: ") + std::strerror(errno)});
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);  // length checked by the caller
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    return std::unexpected(ServerError{true, path + ": in use (a process is listening on it)"});
  }
  if (errno != ECONNREFUSED) {
    return std::unexpected(ServerError{true, path + ": " + std::strerror(errno)});
  }
  if (::unlink(path.c_str()) != 0) {
    return std::unexpected(
        ServerError{true, path + ": cannot remove the stale socket: " + std::strerror(errno)});
  }
  spdlog::info("{}: replaced a stale socket", path);
  return {};
}

}  // namespace

void apply_limits(http::request_parser<http::string_body>& parser, const ServerLimits& limits) {
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
}

ApiResponse http_error_response(const boost::system::error_code& ec) {
  ApiResponse r = fault("malformed or oversized HTTP request: " + ec.message());
  if (ec == http::error::header_limit) r.status = 431;
  if (ec == http::error::body_limit) r.status = 413;
  return r;
}

// One connection: read a request (within the limits and the timeout), hand it to the
// controller, write its reply, repeat while the client keeps the connection alive.
// Lives as long as an operation or a pending reply holds it (shared_from_this).
class ApiServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ApiServer& server, Local::socket socket) : server_(server), stream_(std::move(socket)) {
    ++server_.clients_;
  }
  ~Session() { --server_.clients_; }

  void read() {
    parser_.emplace();
    apply_limits(*parser_, server_.limits_);
    stream_.expires_after(server_.limits_.timeout);  // a silent client is dropped
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        (ec && &ec.category() != &http::make_error_code(http::error::end_of_stream).category())) {
      // The client left, stayed silent too long, or the socket failed: nobody to answer.
      if (ec == beast::error::timeout) spdlog::debug("api: a client timed out; dropped");
      return close();
    }
    if (ec) return write(http_error_response(ec), false, 11);  // answered, then closed
    if (!parser_) return close();  // read() emplaced it before this read began
    const http::request<http::string_body>& req = parser_->get();
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();
    ApiRequest api{req.method(), std::string(req.target()), req.body()};
    server_.controller_->handle(api,
                                [self = shared_from_this(), keep_alive, version](ApiResponse r) {
                                  self->write(std::move(r), keep_alive, version);
                                });
  }

  void write(ApiResponse r, bool keep_alive, unsigned version) {
    response_.emplace(static_cast<http::status>(r.status), version);
    response_->set(http::field::server, "Labyrinth");
    if (!r.body.empty()) response_->set(http::field::content_type, "application/json");
    response_->body() = std::move(r.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    stream_.expires_after(server_.limits_.timeout);  // a client that never reads is dropped
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ignored;
    // A client already gone is no error here: the result is the connection's end either way.
    (void)stream_.socket().shutdown(Local::socket::shutdown_both, ignored);
    stream_.close();
  }

  ApiServer& server_;
  beast::basic_stream<Local, asio::any_io_executor, beast::unlimited_rate_policy> stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
};

std::expected<std::unique_ptr<ApiServer>, ServerError> ApiServer::bind(const std::string& path,
                                                                       const ServerLimits& limits) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return std::unexpected(
        ServerError{true, "--api-sock: the path must have 1.." +
                              std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes"});
  }
  if (auto r = clear_stale(path); !r) return std::unexpected(r.error());
  std::unique_ptr<ApiServer> s(new ApiServer(path, limits));
  boost::system::error_code ec;
  (void)s->acceptor_.open(Local(), ec);  // ec carries the result
  if (!ec) {
    // Owner-only from its creation: no window in which another user could connect.
    const mode_t old = ::umask(0177);
    (void)s->acceptor_.bind(Local::endpoint(path), ec);
    ::umask(old);
  }
  if (!ec) (void)s->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    s->removed_ = true;  // not ours: nothing to remove
    return std::unexpected(ServerError{false, path + ": " + ec.message()});
  }
  return s;
}

ApiServer::~ApiServer() {
  stop();
}

void ApiServer::start(ApiController& controller, bool seccomp) {
  controller_ = &controller;
  accept();
  arm_metrics_timer();
  thread_ = std::thread([this, seccomp] {
    if (seccomp) sandbox::Seccomp::install_or_exit(sandbox::ThreadKind::api, {});
    for (;;) {
      try {
        io_.run();
        break;                             // stopped
      } catch (const std::exception& e) {  // a handler threw: a bug; keep serving
        spdlog::error("api: {}", e.what());
      }
    }
    // The socket goes with the thread that served it: by now the main thread runs under
    // the event loop's filter, which has no unlink (and should not get one).
    remove_socket();
  });
}

void ApiServer::remove_socket() {
  if (!removed_) {
    (void)::unlink(path_.c_str());
    removed_ = true;
  }
}

void ApiServer::stop() {
  io_.stop();
  if (thread_.joinable()) {
    thread_.join();  // it removed the socket (removed_ is then read after the join)
  } else {
    remove_socket();  // never started: the caller's thread, still unconfined
  }
}

void ApiServer::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, Local::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory || ec.value() == ENFILE) {
      // The connection waits in the backlog; accepting again at once would fail again,
      // as fast as the thread can loop. Wait for sessions to end and free descriptors.
      if (!accept_starved_)
        spdlog::warn("api: accept: {}; retrying every {} ms", ec.message(),
                     limits_.accept_backoff.count());
      accept_starved_ = true;
      spdlog::debug("api: accept failed: {}", ec.message());
      accept_timer_.expires_after(limits_.accept_backoff);
      accept_timer_.async_wait([this](const boost::system::error_code& tec) {
        if (!tec) accept();
      });
      return;
    }
    if (!ec) {
      accept_starved_ = false;
      if (clients_ >= limits_.max_clients) {
        spdlog::warn("api: {} clients already connected; one more dropped", clients_);
      } else {
        std::make_shared<Session>(*this, std::move(socket))->read();
      }
    }
    accept();  // another error (the peer gave up, ECONNABORTED): the next one may fare better
  });
}

void ApiServer::arm_metrics_timer() {
  metrics_timer_.expires_after(limits_.metrics_period);
  metrics_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    controller_->periodic_metrics();
    arm_metrics_timer();
  });
}

}  // namespace labyrinth::vmm::api
