// tests/fuzz/api_fuzz.cc — the API's request path: raw bytes through the server's HTTP
// parser (Beast, with the server's limits: vmm/api/api_server.h) and every request that
// parses through the controller's routes and handlers (vmm/api/api_controller.h).
//
// PUT /logger and PUT /metrics are left out (they write to the files they name). The
// input is split into requests on a 0xFF byte, so one input drives a sequence (PUTs
// then InstanceStart, ...) through one controller. The VMM side refuses every start (no
// VM is built here) and answers metrics with an empty object.
//
// Invariants: no crash or exception; every answer is 200, 204, 400, 413 or 431; a 400 and
// the others carry a JSON object {"fault_message": one printable line}; a 204 has no body
// and a 200 a JSON object; the controller never reports a running VM.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/json/parse.hpp>

#include "tests/fuzz/fuzz_check.h"
#include "vmm/api/api_controller.h"
#include "vmm/api/api_server.h"

namespace {

namespace api = labyrinth::vmm::api;
namespace http = boost::beast::http;

class RefusingLink final : public api::VmmLink {
 public:
  void start(std::string config_json,
             std::function<void(std::optional<std::string>)> done) override {
    done("refused by the fuzz target (" + std::to_string(config_json.size()) + " bytes)");
  }
  void metrics(std::function<void(boost::json::object)> done) override { done({}); }
  void set_paused(bool, std::function<void(bool)> done) override { done(true); }
  bool send_ctrl_alt_del() override { return true; }
  const labyrinth::vmm::Config& running_config() const override { return config_; }

 private:
  labyrinth::vmm::Config config_;
};

void check_response(const api::ApiResponse& r) {
  FUZZ_CHECK(
      r.status == 200 || r.status == 204 || r.status == 400 || r.status == 413 || r.status == 431,
      "status %u", r.status);
  if (r.status == 204) {
    FUZZ_CHECK(r.body.empty(), "a 204 with %zu bytes of body", r.body.size());
    return;
  }
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(r.body, ec);
  FUZZ_CHECK(!ec && v.is_object(), "a %u body that is not a JSON object: %s", r.status,
             r.body.c_str());
  if (r.status == 200) return;
  const boost::json::value* m = v.get_object().if_contains("fault_message");
  FUZZ_CHECK(m != nullptr && m->is_string(), "a %u without a fault_message", r.status);
  for (const char c : m->get_string()) {
    FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7F,
               "fault_message is not one printable line");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RefusingLink link;
  labyrinth::vmm::ConfigLimits limits;
  limits.max_mem_mib = 4096;
  api::ApiController controller(link, limits);
  const api::ServerLimits server_limits;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const size_t cut = rest.find('\xFF');
    const std::string_view one = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + 1);
    http::request_parser<http::string_body> parser;
    api::apply_limits(parser, server_limits);
    parser.eager(true);
    boost::system::error_code ec;
    const size_t used = parser.put(boost::asio::buffer(one.data(), one.size()), ec);
    (void)used;
    if (!ec && !parser.is_done()) {
      parser.put_eof(ec);  // the client closed: what it sent is all there is
    }
    if (ec) {
      if (ec != http::error::need_more) check_response(api::http_error_response(ec));
      continue;
    }
    const auto& req = parser.get();
    // PUT /logger and PUT /metrics open and write any existing file the body names: not
    // on the machine running the fuzzer (api_test.py covers them).
    if (req.target().starts_with("/logger") || req.target().starts_with("/metrics")) continue;
    controller.handle({req.method(), std::string(req.target()), req.body()},
                      [](const api::ApiResponse& r) { check_response(r); });
    FUZZ_CHECK(controller.state() == api::VmState::not_started, "a refused start left state %d",
               static_cast<int>(controller.state()));
  }
  return 0;
}
