// The API's routes and handlers; see api_controller.h.
#include "vmm/api/api_controller.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "vmm/config/json_reader.h"
#include "vmm/config/parsers.h"

#ifndef LABYRINTH_VERSION
#error "LABYRINTH_VERSION comes from CMake's project(VERSION)"
#endif

namespace labyrinth::vmm::api {

namespace json = boost::json;
namespace http = boost::beast::http;
using json_reader::printable;
using json_reader::Section;

namespace {

// Firecracker's own words for a pre-boot-only request after start.
constexpr std::string_view kAfterStart =
    "The requested operation is not supported after starting the microVM.";
// ... and for a post-boot request before it.
constexpr std::string_view kBeforeStart =
    "The requested operation is not supported before starting the microVM.";

// Firecracker endpoints Labyrinth does not have: a clear 400, not a 404 or a hang.
constexpr std::array<std::string_view, 9> kNotImplemented = {"/balloon", "/drives",   "/pmem",
                                                             "/mmds",    "/entropy",  "/serial",
                                                             "/hotplug", "/snapshot", "/vsock"};

// "/drives/root" -> "/drives" matches; "/drivesX" does not.
bool under(std::string_view path, std::string_view prefix) {
  return path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

ApiResponse ok_json(const json::value& v) {
  return {200, json::serialize(v)};
}

std::string mac_string(const std::array<uint8_t, 6>& mac) {
  char buf[18];
  (void)std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                      mac[3], mac[4], mac[5]);
  return buf;
}

// Firecracker's CpuConfig, as its GET /vm/config shows it: numbers as hex strings,
// bitmaps as "0b" and 32 characters.
json::object cpu_config_json(const CpuTemplate& t) {
  static constexpr std::string_view kRegs[] = {"eax", "ebx", "ecx", "edx"};
  json::array leaves;
  for (const CpuidLeafModifier& m : t.cpuid_modifiers) {
    json::array mods;
    for (const CpuidRegisterModifier& r : m.modifiers) {
      std::string bitmap = "0b";
      for (int bit = 31; bit >= 0; --bit) {
        const uint32_t mask = 1u << bit;
        bitmap += (r.bitmap.filter & mask) == 0 ? 'x' : (r.bitmap.bits & mask) != 0 ? '1' : '0';
      }
      mods.emplace_back(
          json::object{{"register", kRegs[static_cast<size_t>(r.reg)]}, {"bitmap", bitmap}});
    }
    char leaf[16], subleaf[16];
    (void)std::snprintf(leaf, sizeof leaf, "0x%x", m.leaf);
    (void)std::snprintf(subleaf, sizeof subleaf, "0x%x", m.subleaf);
    leaves.emplace_back(json::object{
        {"leaf", leaf}, {"subleaf", subleaf}, {"flags", m.flags}, {"modifiers", std::move(mods)}});
  }
  return {{"cpuid_modifiers", std::move(leaves)}};
}

json::object machine_config_json(const Config& c) {
  return {{"vcpu_count", c.vcpu_count},
          {"mem_size_mib", c.mem_size_mib},
          {"smt", false},
          {"track_dirty_pages", false}};
}

// A spdlog sink onto the file PUT /logger opened (a file or a FIFO; no O_CREAT, as
// Firecracker: the path must exist). One write(2) per line: allowed on every thread.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit FdSink(Fd fd) : fd_(std::move(fd)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    // A full FIFO or disk loses the line: logging never blocks a vCPU or the event loop.
    (void)!::write(fd_.get(), line.data(), line.size());
  }
  void flush_() override {}

 private:
  Fd fd_;
};

// Opens an existing file or FIFO to append to, never blocking on it.
std::expected<Fd, std::string> open_output(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return std::unexpected("cannot open \"" + printable(path) + "\": " + std::strerror(errno));
  return Fd(fd);
}

// A JSON boolean at key, if present; a type error goes to s.
std::optional<bool> boolean(Section& s, std::string_view key) {
  const json::value* v = s.get(key, false);
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) {
    s.fail(key, std::string("expected a boolean, got ") +
                    std::string(json_reader::kind_name(v->kind())));
    return std::nullopt;
  }
  return v->get_bool();
}

// A request target as one printable ASCII line: every byte outside 0x21-0x7E (and the
// backslash) as \xNN. printable() keeps bytes >= 0x80 for UTF-8 text; a target is not
// text, and raw bytes from it would make the JSON body invalid.
std::string target_text(std::string_view target) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(target.size());
  for (const char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u > 0x20 && u < 0x7F && c != '\\') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

bool ascii_target(std::string_view target) {
  return std::all_of(target.begin(), target.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7F;
  });
}

}  // namespace

std::string_view version() {
  return LABYRINTH_VERSION;
}

ApiResponse fault(std::string_view message) {
  return {400, json::serialize(json::object{{"fault_message", message}})};
}

std::expected<json::object, ApiResponse> parse_body(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return std::unexpected(fault("invalid JSON body: " + ec.message()));
  if (!v.is_object()) return std::unexpected(fault("the body must be a JSON object"));
  return std::move(v.get_object());
}

ApiController::ApiController(VmmLink& link, const ConfigLimits& limits)
    : link_(link), limits_(limits) {}

void ApiController::handle(const ApiRequest& req, const Reply& reply) {
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));  // Firecracker takes no query parameters
  // RFC 3986: a target is printable ASCII, anything else percent-encoded. Refused here,
  // before a byte of it can reach a JSON body or the stored config (an interface id).
  if (!ascii_target(path)) {
    return reply(
        fault("the request target must be printable ASCII (percent-encode other "
              "bytes): " +
              target_text(path)));
  }
  const http::verb m = req.method;
  const bool get = m == http::verb::get, put = m == http::verb::put;
  if (path == "/" && get) {
    const char* state = state_ == VmState::running  ? "Running"
                        : state_ == VmState::paused ? "Paused"
                                                    : "Not started";
    return reply(ok_json(json::object{{"app_name", "Labyrinth"},
                                      {"id", "anonymous-instance"},
                                      {"state", state},
                                      {"vmm_version", version()}}));
  }
  if (path == "/vm" && m == http::verb::patch) return patch_vm(req.body, reply);
  if (path == "/version" && get)
    return reply(ok_json(json::object{{"firecracker_version", version()}}));
  if (path == "/vm/config" && get) return reply(get_vm_config());
  if (path == "/machine-config" && get) return reply(get_machine_config());
  if (path == "/machine-config" && put) return reply(put_section("machine-config", req.body));
  if (path == "/boot-source" && put) return reply(put_section("boot-source", req.body));
  if (path == "/labyrinth" && put) return reply(put_section("labyrinth", req.body));
  if (path == "/cpu-config" && put) return reply(put_section("cpu-config", req.body));
  if (path == "/logger" && put) return reply(put_logger(req.body));
  if (path == "/metrics" && put) return reply(put_metrics(req.body));
  if (path == "/actions" && put) return put_actions(req.body, reply);
  if (path == "/labyrinth/metrics" && get) return get_labyrinth_metrics(reply);
  constexpr std::string_view kNics = "/network-interfaces/";
  if (path.starts_with(kNics) && path.size() > kNics.size() &&
      path.find('/', kNics.size()) == std::string_view::npos && put) {
    return reply(put_network_interface(path.substr(kNics.size()), req.body));
  }
  for (std::string_view p : kNotImplemented) {
    if (under(path, p)) {
      return reply(fault(printable(path) +
                         ": not implemented by Labyrinth (docs/api.md lists its endpoints)"));
    }
  }
  reply(fault("Invalid request method and/or path: " + std::string(http::to_string(m)) + " " +
              printable(path)));
}

ApiResponse ApiController::put_section(std::string_view name, const std::string& body) {
  if (state_ != VmState::not_started) return fault(kAfterStart);
  auto obj = parse_body(body);
  if (!obj) return obj.error();
  // The file's own section parser: the same keys, ranges and messages as --config.
  Config scratch;
  std::optional<ConfigError> err;
  if (name == "boot-source") {
    parse_boot_source(*obj, scratch, err);
  } else if (name == "machine-config") {
    parse_machine(*obj, scratch, limits_, err);
  } else if (name == "cpu-config") {
    parse_cpu_template(*obj, "cpu-config", scratch.cpu_template, err);
  } else {
    parse_labyrinth(*obj, scratch, err);
  }
  if (err) return fault(err->message());
  doc_[name] = std::move(*obj);
  return {};
}

ApiResponse ApiController::put_network_interface(std::string_view iface_id,
                                                 const std::string& body) {
  if (state_ != VmState::not_started) return fault(kAfterStart);
  auto obj = parse_body(body);
  if (!obj) return obj.error();
  if (const json::value* id = obj->if_contains("iface_id");
      id != nullptr && id->is_string() && id->get_string() != iface_id) {
    return fault("network-interfaces.iface_id: \"" + printable(id->get_string()) +
                 "\" does not match the path's \"" + printable(iface_id) + "\"");
  }
  // The list as it would be, checked whole (duplicate names, TAPs and MACs; the limit).
  json::array list;
  if (const json::value* v = doc_.if_contains("network-interfaces")) list = v->get_array();
  auto same = std::find_if(list.begin(), list.end(), [&](const json::value& e) {
    return e.get_object().at("iface_id").get_string() == iface_id;
  });
  if (same != list.end()) {
    *same = std::move(*obj);
  } else {
    list.emplace_back(std::move(*obj));
  }
  std::vector<NetworkInterface> scratch;
  std::optional<ConfigError> err;
  parse_network_interfaces(list, scratch, err);
  if (err) return fault(err->message());
  doc_["network-interfaces"] = std::move(list);
  return {};
}

ApiResponse ApiController::put_logger(const std::string& body) {
  if (state_ != VmState::not_started) return fault(kAfterStart);
  auto obj = parse_body(body);
  if (!obj) return obj.error();
  std::optional<ConfigError> err;
  Section s(*obj, "logger", err);
  s.allow_only({"level", "log_path", "show_level", "show_log_origin", "module"});
  std::string level, path, module;
  s.string("level", false, level);
  s.string("log_path", false, path);
  s.string("module", false, module);
  const std::optional<bool> show_level = boolean(s, "show_level");
  const std::optional<bool> show_origin = boolean(s, "show_log_origin");
  std::ranges::transform(level, level.begin(), [](char c) { return std::tolower(c); });
  // Firecracker's names (case-insensitive) onto spdlog's.
  std::optional<spdlog::level::level_enum> lvl;
  if (level == "error") lvl = spdlog::level::err;
  if (level == "warning") lvl = spdlog::level::warn;
  if (level == "info") lvl = spdlog::level::info;
  if (level == "debug") lvl = spdlog::level::debug;
  if (level == "trace") lvl = spdlog::level::trace;
  if (level == "off") lvl = spdlog::level::off;
  if (s.ok() && !level.empty() && !lvl) {
    s.fail("level",
           "must be Error, Warning, Info, Debug, Trace or Off, got \"" + printable(level) + "\"");
  }
  if (s.ok() && show_origin.value_or(false)) {
    s.fail("show_log_origin", "not supported by Labyrinth (its log lines carry no origin)");
  }
  if (s.ok() && !module.empty()) s.fail("module", "not supported by Labyrinth (one module)");
  if (err) return fault(err->message());
  if (!path.empty()) {
    auto fd = open_output(path);
    if (!fd) return fault("logger.log_path: " + fd.error());
    // Before start the API thread is the only one logging: the swap races nobody.
    auto logger =
        std::make_shared<spdlog::logger>("labyrinth", std::make_shared<FdSink>(std::move(*fd)));
    logger->set_level(spdlog::default_logger()->level());
    spdlog::set_default_logger(std::move(logger));
  }
  spdlog::set_pattern(show_level.value_or(true) ? "labyrinth: [%l] %v" : "labyrinth: %v");
  if (lvl) spdlog::set_level(*lvl);
  return {};
}

ApiResponse ApiController::put_metrics(const std::string& body) {
  if (state_ != VmState::not_started) return fault(kAfterStart);
  auto obj = parse_body(body);
  if (!obj) return obj.error();
  std::optional<ConfigError> err;
  Section s(*obj, "metrics", err);
  s.allow_only({"metrics_path"});
  std::string path;
  s.string("metrics_path", true, path);
  if (err) return fault(err->message());
  auto fd = open_output(path);
  if (!fd) return fault("metrics.metrics_path: " + fd.error());
  metrics_fd_ = std::move(*fd);
  return {};
}

void ApiController::put_actions(const std::string& body, const Reply& reply) {
  auto obj = parse_body(body);
  if (!obj) return reply(obj.error());
  std::optional<ConfigError> err;
  Section s(*obj, "", err);
  s.allow_only({"action_type"});
  std::string action;
  s.string("action_type", true, action);
  if (err) return reply(fault(err->message()));
  if (action == "InstanceStart") {
    if (started()) return reply(fault("InstanceStart: the microVM is already started"));
    if (state_ == VmState::starting) return reply(fault("InstanceStart: already in progress"));
    state_ = VmState::starting;
    return link_.start(json::serialize(doc_), [this, reply](std::optional<std::string> failure) {
      state_ = failure ? VmState::not_started : VmState::running;
      reply(failure ? fault("InstanceStart: " + *failure) : ApiResponse{});
    });
  }
  if (action == "FlushMetrics") {
    if (!started()) return reply(fault("FlushMetrics: the microVM is not running"));
    if (!metrics_fd_)
      return reply(fault("FlushMetrics: no metrics file (PUT /metrics before start)"));
    return link_.metrics([this, reply](const json::object& m) {
      reply(write_metrics_line(m)
                ? ApiResponse{}
                : fault(std::string("FlushMetrics: cannot write the metrics file: ") +
                        std::strerror(errno)));
    });
  }
  if (action == "SendCtrlAltDel") {
    if (!started()) return reply(fault(kBeforeStart));
    if (!link_.send_ctrl_alt_del()) {
      return reply(
          fault("SendCtrlAltDel: the keys of the last one are still waiting for the guest to "
                "read them"));
    }
    return reply({});
  }
  reply(fault("action_type: must be InstanceStart, FlushMetrics or SendCtrlAltDel, got \"" +
              printable(action) + "\""));
}

void ApiController::get_labyrinth_metrics(const Reply& reply) {
  if (!started()) return reply(fault("/labyrinth/metrics: the microVM is not running"));
  link_.metrics([reply](const json::object& m) { reply(ok_json(m)); });
}

// Firecracker: Paused and Resumed are accepted in either state after start (pausing a
// paused VM is a no-op that answers 204), refused before it.
void ApiController::patch_vm(const std::string& body, const Reply& reply) {
  auto obj = parse_body(body);
  if (!obj) return reply(obj.error());
  std::optional<ConfigError> err;
  Section s(*obj, "vm", err);
  s.allow_only({"state"});
  std::string state;
  s.string("state", true, state);
  if (s.ok() && state != "Paused" && state != "Resumed")
    s.fail("state", "must be Paused or Resumed, got \"" + printable(state) + "\"");
  if (err) return reply(fault(err->message()));
  if (!started()) return reply(fault(kBeforeStart));
  if (state_change_) return reply(fault("PATCH /vm: a state change is already in progress"));
  const bool pause = state == "Paused";
  if (pause == (state_ == VmState::paused)) return reply({});
  state_change_ = true;
  link_.set_paused(pause, [this, pause, reply](bool done) {
    state_change_ = false;
    if (!done) return reply(fault("PATCH /vm: the microVM is stopping"));
    state_ = pause ? VmState::paused : VmState::running;
    reply({});
  });
}

bool ApiController::write_metrics_line(const json::object& metrics) {
  if (!metrics_fd_) return false;
  json::object line = metrics;
  line["utc_timestamp_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  const std::string text = json::serialize(line) + "\n";
  return ::write(metrics_fd_.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

void ApiController::periodic_metrics() {
  if (!started() || !metrics_fd_) return;
  link_.metrics([this](const json::object& m) {
    if (!write_metrics_line(m))
      spdlog::debug("api: a metrics line was lost: {}", std::strerror(errno));
  });
}

ApiResponse ApiController::get_machine_config() const {
  if (started()) return ok_json(machine_config_json(link_.running_config()));
  Config scratch;  // the defaults, and what PUT /machine-config set (checked then)
  std::optional<ConfigError> err;
  if (const json::value* v = doc_.if_contains("machine-config")) {
    parse_machine(v->get_object(), scratch, limits_, err);
  }
  return ok_json(machine_config_json(scratch));
}

ApiResponse ApiController::get_vm_config() const {
  Config scratch;
  const Config* c = &scratch;
  if (started()) {
    c = &link_.running_config();
  } else {  // what the PUTs set so far (each checked then), over the defaults
    std::optional<ConfigError> err;
    if (const json::value* v = doc_.if_contains("boot-source"))
      parse_boot_source(v->get_object(), scratch, err);
    if (const json::value* v = doc_.if_contains("machine-config")) {
      parse_machine(v->get_object(), scratch, limits_, err);
    }
    if (const json::value* v = doc_.if_contains("network-interfaces")) {
      parse_network_interfaces(v->get_array(), scratch.network_interfaces, err);
    }
    if (const json::value* v = doc_.if_contains("cpu-config")) {
      parse_cpu_template(v->get_object(), "cpu-config", scratch.cpu_template, err);
    }
  }
  json::object out;
  if (!c->kernel_image_path.empty()) {
    json::object boot{{"kernel_image_path", c->kernel_image_path}, {"boot_args", c->boot_args}};
    if (!c->initrd_path.empty()) boot["initrd_path"] = c->initrd_path;
    out["boot-source"] = std::move(boot);
  }
  out["machine-config"] = machine_config_json(*c);
  if (!c->cpu_template.empty()) out["cpu-config"] = cpu_config_json(c->cpu_template);
  json::array nics;
  for (const NetworkInterface& n : c->network_interfaces) {
    nics.emplace_back(json::object{{"iface_id", n.iface_id},
                                   {"host_dev_name", n.host_dev_name},
                                   {"guest_mac", mac_string(n.guest_mac)}});
  }
  out["network-interfaces"] = std::move(nics);
  out["drives"] = json::array{};
  return ok_json(out);
}

}  // namespace labyrinth::vmm::api
