// vmm/api/api_server.h — the API's HTTP/1.1 server on a Unix socket (Boost.Beast over
// Boost.Asio), on a thread of its own.
//
//   auto server = ApiServer::bind("/tmp/labyrinth.sock", {});   // on the main thread
//   if (!server) { fprintf(stderr, "%s\n", server.error().message.c_str()); exit(...); }
//   ApiController controller(link, limits);                      // api_controller.h
//   (*server)->start(controller, /*seccomp=*/true);              // the API thread runs
//   ...
//   (*server)->stop();                                           // joins it, removes the socket
//
// The socket is created owner-only (0600: umask 0177 around bind). An existing path is
// refused unless it is a stale socket — a socket nobody listens on (connect fails with
// ECONNREFUSED), as a Labyrinth that was killed leaves behind; that one is replaced.
//
// Every connection is served asynchronously on the API thread, one request at a time
// (HTTP/1.1 keep-alive), within limits that keep a client from holding the thread or
// memory: a request's header and body sizes (431 and 413, then the connection is
// closed), a timeout for each request to arrive in full and each response to be taken
// (a client that connects and never sends is dropped), and a number of connections (one
// more is closed at once). Malformed HTTP is answered 400 and the connection closed.
// An accept that fails for want of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM: the
// connection stays queued in the listen backlog) is retried after
// ServerLimits::accept_backoff rather than at once, so the thread does not spin while
// the process is out of descriptors; one warning per episode.
// Nothing on this thread waits for the VM: a request the VM must answer (InstanceStart,
// metrics) is replied to when the VM's answer is posted back (api_controller.h).
//
// The thread confines itself with the `api` seccomp filter (vmm/sandbox/seccomp.h)
// before it serves anything, and removes the socket as it ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "vmm/api/api_controller.h"

namespace labyrinth::vmm::api {

struct ServerLimits {
  size_t max_header_bytes = size_t{8} * 1024;     // request line and headers
  size_t max_body_bytes = size_t{64} * 1024;      // a request body (Firecracker: 51,200 by default)
  std::chrono::milliseconds timeout{10'000};      // for a request to arrive, a response to go
  size_t max_clients = 16;                        // connections open at once
  std::chrono::seconds metrics_period{60};        // PUT /metrics's file: a line this often
  std::chrono::milliseconds accept_backoff{100};  // after an accept failed for a resource
};

// A request parser as the server sets one up for each request (header and body limits):
// the fuzz target parses with exactly this.
void apply_limits(boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
                  const ServerLimits& limits);
// The answer to a request the parser rejected (ec): 431, 413 or 400, with a fault_message.
ApiResponse http_error_response(const boost::system::error_code& ec);

struct ServerError {
  bool usage = false;   // the path is unusable as given (exit status 2), else a host error (5)
  std::string message;  // one line
};

class ApiServer {
 public:
  // Creates and listens on the socket at path (on the calling thread; no thread yet).
  static std::expected<std::unique_ptr<ApiServer>, ServerError> bind(const std::string& path,
                                                                     const ServerLimits& limits);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // The API thread's io_context: a VmmLink posts its answers here.
  boost::asio::io_context& io() { return io_; }
  // Starts the API thread serving controller (which must outlive stop()).
  void start(ApiController& controller, bool seccomp);
  // Stops and joins the API thread (connections are dropped) and removes the socket.
  // Idempotent; from any thread but the API thread.
  void stop();
  size_t clients() const { return clients_; }  // API thread only

 private:
  class Session;
  ApiServer(std::string path, const ServerLimits& limits)
      : path_(std::move(path)),
        limits_(limits),
        acceptor_(io_),
        metrics_timer_(io_),
        accept_timer_(io_) {}
  void accept();
  void arm_metrics_timer();
  void remove_socket();  // once: by the API thread as it ends, or by stop() if it never ran

  std::string path_;
  ServerLimits limits_;
  boost::asio::io_context io_;  // first: every Asio object below uses it
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer metrics_timer_;
  boost::asio::steady_timer accept_timer_;  // the back-off after a resource error
  bool accept_starved_ = false;             // warned about this episode (API thread)
  ApiController* controller_ = nullptr;
  size_t clients_ = 0;  // open sessions (API thread)
  std::thread thread_;
  bool removed_ = false;  // the API thread's until it is joined
};

}  // namespace labyrinth::vmm::api
