// vmm/api/api_controller.h — the API's routes and state: what each request does, with
// no socket and no KVM in sight (the server, api_server.h, brings requests here; the
// VMM side, VmmLink, does what needs a VM).
//
//   ApiController api(link, ConfigLimits::host_limits());
//   api.handle({http::verb::put, "/boot-source", R"({"kernel_image_path": "x.elf"})"},
//              [](ApiResponse r) { /* r.status == 204 */ });
//
// It follows Firecracker's API definition (../shared/peers/firecracker-api-*.yaml) where
// Firecracker has the endpoint, with Labyrinth's own under /labyrinth/ (docs/api.md):
//   before InstanceStart   PUT /boot-source, PUT|GET /machine-config,
//                          PUT /network-interfaces/{iface_id}, PUT /logger, PUT /metrics,
//                          PUT /labyrinth (the config file's "labyrinth" section),
//                          PUT /cpu-config (a CPU template: cpuid_modifiers only)
//   any time               GET /, GET /version, GET /vm/config
//   PUT /actions           InstanceStart (before), FlushMetrics and SendCtrlAltDel (after)
//   after InstanceStart    GET /labyrinth/metrics, PATCH /vm {"state": "Paused"|"Resumed"}
// Success is 204 with no body or 200 with a JSON body; every failure is 400 with
// {"fault_message": "..."} naming the field, as Firecracker answers: bad JSON, an unknown
// key, a value out of range, a request in the wrong state, an unknown path or method, and
// an endpoint Labyrinth does not implement (drives, balloon, vsock, snapshots, ...).
//
// A pre-start request is checked by the config file's own section parsers
// (vmm/config/parsers.h) and kept as that section's JSON; InstanceStart hands the whole
// document to VmmLink::start, which parses it with parse_config and pre-flight exactly as
// a --config file, so an API-built VM and a file-built one cannot be checked differently.
//
// Threading: one thread (the API thread) calls everything here. A reply may come later
// (InstanceStart, metrics): the VmmLink then calls `done` on the API thread.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/verb.hpp>
#include <boost/json/object.hpp>

#include "vmm/config/config.h"
#include "vmm/fd.h"

namespace labyrinth::vmm::api {

struct ApiRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;  // the request target, e.g. "/network-interfaces/eth0"
  std::string body;
};

struct ApiResponse {
  unsigned status = 204;
  std::string body;  // JSON, or empty (204)
};
using Reply = std::function<void(ApiResponse)>;

// What the API needs from the VMM. Every call is made on the API thread; every `done`
// must be called on the API thread too (or never, if the VM stops first).
class VmmLink {
 public:
  virtual ~VmmLink() = default;
  // Parse config_json as a --config file (parse_config + pre-flight) and build and start
  // the VM; done(std::nullopt) once it runs, done(message) if it could not start.
  virtual void start(std::string config_json,
                     std::function<void(std::optional<std::string>)> done) = 0;
  // The running VM's metrics (vmm/report/metrics.h's metrics_json), read on its event loop.
  virtual void metrics(std::function<void(boost::json::object)> done) = 0;
  // PATCH /vm: pause (true) or resume the running VM: vCPUs parked, devices quiesced
  // (Machine::set_paused). done(true) once it is so, done(false) if the VM began stopping.
  virtual void set_paused(bool paused, std::function<void(bool)> done) = 0;
  // SendCtrlAltDel: the i8042's keyboard presses Ctrl-Alt-Del for the guest. False while
  // the keys of an earlier one are still unread.
  virtual bool send_ctrl_alt_del() = 0;
  // The running VM's configuration as parsed.
  virtual const Config& running_config() const = 0;
};

// InstanceInfo.state: Not started, Running, Paused (starting: InstanceStart in flight).
enum class VmState : uint8_t { not_started, starting, running, paused };

class ApiController {
 public:
  // limits: for the machine-config checks (ConfigLimits::host_limits(), read before the
  // API thread's seccomp filter: it needs sysinfo).
  ApiController(VmmLink& link, const ConfigLimits& limits);

  void handle(const ApiRequest& req, const Reply& reply);
  // `labyrinth run --config FILE --api-sock PATH`: the VM started from the file.
  void mark_running() { state_ = VmState::running; }
  VmState state() const { return state_; }
  // The metrics file given by PUT /metrics (invalid until then): flushed by FlushMetrics
  // and periodically by the server (write_metrics_line).
  bool metrics_configured() const { return metrics_fd_.valid(); }
  // Writes one line {"utc_timestamp_ms": ..., <metrics>} to the metrics file; false if
  // it could not (a FIFO without a reader, a full disk).
  bool write_metrics_line(const boost::json::object& metrics);
  // The server's timer (ServerLimits::metrics_period): a line to the metrics file while
  // the VM runs, if PUT /metrics gave one.
  void periodic_metrics();

 private:
  ApiResponse get_machine_config() const;
  ApiResponse get_vm_config() const;
  ApiResponse put_section(std::string_view name, const std::string& body);
  ApiResponse put_network_interface(std::string_view iface_id, const std::string& body);
  ApiResponse put_logger(const std::string& body);
  ApiResponse put_metrics(const std::string& body);
  void put_actions(const std::string& body, const Reply& reply);
  void get_labyrinth_metrics(const Reply& reply);
  void patch_vm(const std::string& body, const Reply& reply);
  bool started() const { return state_ == VmState::running || state_ == VmState::paused; }

  VmmLink& link_;
  ConfigLimits limits_;
  VmState state_ = VmState::not_started;
  bool state_change_ = false;  // a PATCH /vm in flight
  boost::json::object doc_;    // the config document so far, in --config file form
  Fd metrics_fd_;              // PUT /metrics
};

// 400 {"fault_message": message}.
ApiResponse fault(std::string_view message);
// The JSON object in body, or a fault naming what is wrong with it.
std::expected<boost::json::object, ApiResponse> parse_body(std::string_view body);

// Labyrinth's version (CMake's project version), reported by GET / and GET /version.
std::string_view version();

}  // namespace labyrinth::vmm::api
