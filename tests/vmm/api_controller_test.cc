// ApiController (vmm/api/api_controller.h): routes, checks, states and answers, without
// a socket or KVM. The VMM side is a RecordingLink that keeps what start() was given and
// answers as the test says; the socket and a real VM are api_test.py's.
#include "vmm/api/api_controller.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include "vmm/config/config.h"

namespace labyrinth::vmm::api {
namespace {

namespace http = boost::beast::http;

class RecordingLink final : public VmmLink {
 public:
  void start(std::string config_json,
             std::function<void(std::optional<std::string>)> done) override {
    started_json = std::move(config_json);
    if (answer_later) {
      pending = std::move(done);
      return;
    }
    if (!failure) {  // as Launcher::serve: the document parsed as a file (no pre-flight)
      auto c = parse_config(started_json, no_files());
      ASSERT_TRUE(c.has_value()) << c.error().message();
      config = *c;
    }
    done(failure);
  }
  void metrics(std::function<void(boost::json::object)> done) override {
    done({{"pool", {{"chunks", 1}}}, {"lnics", boost::json::array{}}});
  }
  void set_paused(bool p, std::function<void(bool)> done) override {
    pause_calls.push_back(p);
    done(!stopping);
  }
  bool send_ctrl_alt_del() override {
    ++ctrl_alt_dels;
    return !keys_waiting;
  }
  const Config& running_config() const override { return config; }

  static ConfigLimits no_files() {
    ConfigLimits l;
    l.check_kernel_file = false;
    l.max_mem_mib = 4096;
    return l;
  }

  std::string started_json;
  std::optional<std::string> failure;
  bool answer_later = false;
  std::function<void(std::optional<std::string>)> pending;
  std::vector<bool> pause_calls;  // set_paused's arguments, in order
  bool stopping = false;          // set_paused answers "the VM began stopping"
  int ctrl_alt_dels = 0;
  bool keys_waiting = false;  // send_ctrl_alt_del answers "still unread"
  Config config;
};

class ApiControllerTest : public ::testing::Test {
 protected:
  ApiResponse call(http::verb m, std::string target, std::string body = "") {
    std::optional<ApiResponse> out;
    api_.handle({m, std::move(target), std::move(body)}, [&](ApiResponse r) { out = r; });
    EXPECT_TRUE(out.has_value()) << "no synchronous answer";
    return out.value_or(ApiResponse{0, ""});
  }
  ApiResponse put(std::string target, std::string body) {
    return call(http::verb::put, std::move(target), std::move(body));
  }
  ApiResponse get(std::string target) { return call(http::verb::get, std::move(target)); }
  static std::string fault_of(const ApiResponse& r) {
    return std::string(boost::json::parse(r.body).at("fault_message").as_string());
  }
  void start() {
    ASSERT_EQ(put("/boot-source", R"({"kernel_image_path": "k.elf"})").status, 204u);
    ASSERT_EQ(put("/actions", R"({"action_type": "InstanceStart"})").status, 204u);
  }

  RecordingLink link_;
  ApiController api_{link_, RecordingLink::no_files()};
};

TEST_F(ApiControllerTest, PreStartPutsBecomeTheConfigFileStartParses) {
  EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": "k.elf", "boot_args": "a=1"})").status,
            204u);
  EXPECT_EQ(put("/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64})").status, 204u);
  EXPECT_EQ(
      put("/network-interfaces/eth0",
          R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:00:00:00:09"})")
          .status,
      204u);
  EXPECT_EQ(
      put("/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "tap1"})").status,
      204u);
  // A second PUT of one interface replaces it.
  EXPECT_EQ(
      put("/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "tap2"})").status,
      204u);
  EXPECT_EQ(put("/labyrinth", R"({"pool": {"max_chunks": 4},
                                  "lnics": [{"id": "l0", "backend": {"type": "loopback"}}]})")
                .status,
            204u);
  // Firecracker's PUT /cpu-config body: a CPU template (cpuid_modifiers), kept as the
  // file's "cpu-config" section and shown back by GET /vm/config in Firecracker's form.
  EXPECT_EQ(put("/cpu-config", R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0",
      "flags": 0, "modifiers": [{"register": "ecx",
      "bitmap": "0bxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxx1"}]}]})")
                .status,
            204u);
  const auto vm = boost::json::parse(get("/vm/config").body);
  const auto& leaf = vm.at("cpu-config").at("cpuid_modifiers").at(0);
  EXPECT_EQ(leaf.at("leaf").as_string(), "0x1");
  EXPECT_EQ(leaf.at("modifiers").at(0).at("bitmap").as_string(),
            "0bxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxx1");
  EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})").status, 204u);
  EXPECT_EQ(api_.state(), VmState::running);
  const Config& c = link_.config;
  ASSERT_EQ(c.cpu_template.cpuid_modifiers.size(), 1u);
  EXPECT_EQ(c.cpu_template.cpuid_modifiers[0].modifiers[0].bitmap.filter, (1u << 21) | 1u);
  EXPECT_EQ(c.kernel_image_path, "k.elf");
  EXPECT_EQ(c.boot_args, "a=1");
  EXPECT_EQ(c.vcpu_count, 2u);
  EXPECT_EQ(c.mem_size_mib, 64u);
  ASSERT_EQ(c.network_interfaces.size(), 2u);
  EXPECT_EQ(c.network_interfaces[0].host_dev_name, "tap2");
  EXPECT_EQ(c.network_interfaces[1].iface_id, "eth1");
  EXPECT_EQ(c.pool.max_chunks, 4u);
  ASSERT_EQ(c.lnics.size(), 1u);
  EXPECT_EQ(c.lnics[0].id, "l0");
}

// A bad value is refused with the very message a --config file with it gets.
TEST_F(ApiControllerTest, ErrorsAreTheConfigFileErrors) {
  const struct {
    const char* target;
    const char* body;
    const char* file;
  } cases[] = {
      {"/machine-config", R"({"vcpu_count": 0})",
       R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 0}})"},
      {"/machine-config", R"({"mem_size_mib": 63})",
       R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": {"mem_size_mib": 63}})"},
      {"/machine-config", R"({"vcpu_count": 1, "smt": false})",
       R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 1, "smt": false}})"},
      {"/boot-source", R"({"boot_args": "x"})", R"({"boot-source": {"boot_args": "x"}})"},
      {"/labyrinth", R"({"pool": {"max_chunks": 0}})",
       R"({"boot-source": {"kernel_image_path": "k"}, "labyrinth": {"pool": {"max_chunks": 0}}})"},
      {"/cpu-config", R"({"msr_modifiers": [{"addr": "0x10", "bitmap": "0b1"}]})",
       R"({"boot-source": {"kernel_image_path": "k"}, "cpu-config": {"msr_modifiers": [{"addr": "0x10", "bitmap": "0b1"}]}})"},
      {"/network-interfaces/e",
       R"({"iface_id": "e", "host_dev_name": "t", "guest_mac": "01:00:00:00:00:00"})",
       R"({"boot-source": {"kernel_image_path": "k"}, "network-interfaces": [{"iface_id": "e", "host_dev_name": "t", "guest_mac": "01:00:00:00:00:00"}]})"},
  };
  for (const auto& c : cases) {
    const ApiResponse r = put(c.target, c.body);
    EXPECT_EQ(r.status, 400u) << c.target << " " << c.body;
    auto file = parse_config(c.file, RecordingLink::no_files());
    ASSERT_FALSE(file.has_value()) << c.file;
    EXPECT_EQ(fault_of(r), file.error().message()) << c.target << " " << c.body;
  }
  // Nothing of it was kept: the defaults still stand.
  const auto mc = boost::json::parse(get("/machine-config").body);
  EXPECT_EQ(mc.at("vcpu_count").as_int64(), 1);
  EXPECT_EQ(mc.at("mem_size_mib").as_int64(), 128);
}

TEST_F(ApiControllerTest, NetworkInterfaceIdsMustMatchAndNotRepeat) {
  EXPECT_EQ(put("/network-interfaces/eth0", R"({"iface_id": "eth1", "host_dev_name": "t"})").status,
            400u);
  EXPECT_EQ(put("/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "t"})").status,
            204u);
  const ApiResponse r =
      put("/network-interfaces/eth1", R"({"iface_id": "eth1", "host_dev_name": "t"})");
  EXPECT_EQ(r.status, 400u);  // one TAP for two interfaces
  EXPECT_NE(fault_of(r).find("network-interfaces[1]"), std::string::npos) << fault_of(r);
}

TEST_F(ApiControllerTest, BadBodiesMethodsAndPaths) {
  EXPECT_NE(fault_of(put("/boot-source", "{")).find("invalid JSON"), std::string::npos);
  EXPECT_NE(fault_of(put("/boot-source", "[]")).find("JSON object"), std::string::npos);
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": 3})")).find("action_type"),
            std::string::npos);
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": "Boot"})")).find("action_type"),
            std::string::npos);
  EXPECT_NE(fault_of(call(http::verb::delete_, "/boot-source")).find("Invalid request method"),
            std::string::npos);
  EXPECT_NE(fault_of(get("/boot-source")).find("Invalid request method"), std::string::npos);
  EXPECT_NE(fault_of(get("/network-interfaces/")).find("Invalid request method"),
            std::string::npos);
  EXPECT_NE(fault_of(put("/network-interfaces/a/b", "{}")).find("Invalid request method"),
            std::string::npos);
  EXPECT_NE(fault_of(get("/nowhere")).find("Invalid request method"), std::string::npos);
  for (const char* p :
       {"/drives/root", "/balloon", "/balloon/statistics", "/vsock", "/snapshot/load", "/mmds",
        "/entropy", "/pmem/a", "/hotplug/memory", "/serial"}) {
    EXPECT_NE(fault_of(put(p, "{}")).find("not implemented by Labyrinth"), std::string::npos) << p;
  }
  // Firecracker has only PATCH /vm: another method is a wrong one, not a missing endpoint.
  EXPECT_NE(fault_of(put("/vm", R"({"state": "Paused"})")).find("Invalid request method"),
            std::string::npos);
  EXPECT_EQ(get("/drivesX").status, 400u);
  EXPECT_EQ(api_.state(), VmState::not_started);
}

// Found by api_fuzz: a target with bytes >= 0x80 was echoed raw into fault_message, and the
// body was not valid JSON (UTF-8). Every byte outside printable ASCII is refused and shown
// escaped; an interface id from such a path never reaches the stored config.
TEST_F(ApiControllerTest, ATargetThatIsNotPrintableAsciiIsRefusedEscaped) {
  for (std::string target :
       {std::string("/boot-sourc\xF6\xF6"
                    "e"),
        std::string("/nowhere\x01"), std::string("/network-interfaces/eth\xC3")}) {
    const ApiResponse r = put(target, R"({"iface_id": "eth0", "host_dev_name": "tap0"})");
    EXPECT_EQ(r.status, 400u);
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(r.body, ec);  // valid UTF-8 JSON
    ASSERT_FALSE(ec) << ec.message();
    const std::string m(v.at("fault_message").as_string());
    EXPECT_NE(m.find("printable ASCII"), std::string::npos) << m;
    for (const char c : m) {
      EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F)
          << m;
    }
  }
  EXPECT_NE(fault_of(put("/boot-sourc\xF6"
                         "e",
                         "{}"))
                .find("/boot-sourc\\xf6e"),
            std::string::npos);
  EXPECT_EQ(get("/vm/config").body.find('\xC3'), std::string::npos);
}

TEST_F(ApiControllerTest, InfoAndVersion) {
  auto info = boost::json::parse(get("/").body);
  EXPECT_EQ(info.at("state").as_string(), "Not started");
  EXPECT_EQ(info.at("vmm_version").as_string(), version());
  EXPECT_EQ(boost::json::parse(get("/version?x=1").body).at("firecracker_version").as_string(),
            version());
  start();
  info = boost::json::parse(get("/").body);
  EXPECT_EQ(info.at("state").as_string(), "Running");
}

TEST_F(ApiControllerTest, AFailedStartLeavesTheVmConfigurable) {
  link_.failure = "boot-source.kernel_image_path: cannot read";
  ASSERT_EQ(put("/boot-source", R"({"kernel_image_path": "k.elf"})").status, 204u);
  const ApiResponse r = put("/actions", R"({"action_type": "InstanceStart"})");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(fault_of(r), "InstanceStart: boot-source.kernel_image_path: cannot read");
  EXPECT_EQ(api_.state(), VmState::not_started);
  EXPECT_EQ(put("/boot-source", R"({"kernel_image_path": "other.elf"})").status, 204u);
  link_.failure.reset();
  EXPECT_EQ(put("/actions", R"({"action_type": "InstanceStart"})").status, 204u);
  EXPECT_EQ(link_.config.kernel_image_path, "other.elf");
}

TEST_F(ApiControllerTest, WrongStateRequests) {
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": "FlushMetrics"})")).find("not running"),
            std::string::npos);
  EXPECT_NE(fault_of(get("/labyrinth/metrics")).find("not running"), std::string::npos);
  // A start in flight: a second one and any configuration are refused until it answers.
  link_.answer_later = true;
  ASSERT_EQ(put("/boot-source", R"({"kernel_image_path": "k.elf"})").status, 204u);
  std::optional<ApiResponse> first;
  api_.handle({http::verb::put, "/actions", R"({"action_type": "InstanceStart"})"},
              [&](ApiResponse r) { first = r; });
  EXPECT_FALSE(first.has_value());
  EXPECT_EQ(api_.state(), VmState::starting);
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": "InstanceStart"})")).find("in progress"),
            std::string::npos);
  EXPECT_EQ(put("/machine-config", R"({"vcpu_count": 1})").status, 400u);
  link_.config = *parse_config(link_.started_json, RecordingLink::no_files());
  link_.pending(std::nullopt);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 204u);
  EXPECT_EQ(api_.state(), VmState::running);
  // Running: InstanceStart again, and every pre-start PUT, are refused.
  EXPECT_NE(
      fault_of(put("/actions", R"({"action_type": "InstanceStart"})")).find("already started"),
      std::string::npos);
  for (const char* p : {"/boot-source", "/machine-config", "/labyrinth", "/network-interfaces/e",
                        "/logger", "/metrics"}) {
    EXPECT_NE(fault_of(put(p, "{}")).find("after starting"), std::string::npos) << p;
  }
}

TEST_F(ApiControllerTest, SendCtrlAltDelAfterStart) {
  EXPECT_NE(
      fault_of(put("/actions", R"({"action_type": "SendCtrlAltDel"})")).find("before starting"),
      std::string::npos);
  EXPECT_EQ(link_.ctrl_alt_dels, 0);
  start();
  EXPECT_EQ(put("/actions", R"({"action_type": "SendCtrlAltDel"})").status, 204u);
  EXPECT_EQ(link_.ctrl_alt_dels, 1);
  link_.keys_waiting = true;
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": "SendCtrlAltDel"})")).find("still waiting"),
            std::string::npos);
}

// PATCH /vm as Firecracker: refused before start; after it Paused/Resumed in any order,
// a repeat a no-op (204, the VMM not asked again); GET / says Paused while paused.
TEST_F(ApiControllerTest, PatchVmPausesAndResumesAfterStart) {
  auto patch = [&](std::string body) { return call(http::verb::patch, "/vm", std::move(body)); };
  auto state = [&] {
    return std::string(boost::json::parse(get("/").body).at("state").as_string());
  };
  EXPECT_NE(fault_of(patch(R"({"state": "Paused"})")).find("before starting"), std::string::npos);
  EXPECT_EQ(fault_of(patch(R"({"state": "Stopped"})")),
            R"(vm.state: must be Paused or Resumed, got "Stopped")");
  EXPECT_NE(fault_of(patch(R"({})")).find("vm.state"), std::string::npos);
  EXPECT_NE(fault_of(patch(R"({"state": "Paused", "x": 1})")).find("vm.x"), std::string::npos);
  EXPECT_NE(fault_of(patch("[")).find("invalid JSON"), std::string::npos);
  EXPECT_TRUE(link_.pause_calls.empty());
  start();
  EXPECT_EQ(patch(R"({"state": "Resumed"})").status, 204u);  // running already: a no-op
  EXPECT_EQ(patch(R"({"state": "Paused"})").status, 204u);
  EXPECT_EQ(api_.state(), VmState::paused);
  EXPECT_EQ(state(), "Paused");
  EXPECT_EQ(patch(R"({"state": "Paused"})").status, 204u);  // paused already: a no-op
  // Paused: metrics are read, configuration and a second start still refused.
  EXPECT_EQ(get("/labyrinth/metrics").status, 200u);
  EXPECT_NE(fault_of(put("/boot-source", "{}")).find("after starting"), std::string::npos);
  EXPECT_NE(
      fault_of(put("/actions", R"({"action_type": "InstanceStart"})")).find("already started"),
      std::string::npos);
  EXPECT_EQ(patch(R"({"state": "Resumed"})").status, 204u);
  EXPECT_EQ(state(), "Running");
  EXPECT_EQ(link_.pause_calls, (std::vector<bool>{true, false}));
  // The VM began stopping while the request was in flight: 400, the state unchanged.
  link_.stopping = true;
  EXPECT_NE(fault_of(patch(R"({"state": "Paused"})")).find("stopping"), std::string::npos);
  EXPECT_EQ(state(), "Running");
}

TEST_F(ApiControllerTest, RunningConfigAndMetrics) {
  ASSERT_EQ(put("/machine-config", R"({"vcpu_count": 3, "mem_size_mib": 32})").status, 204u);
  start();
  const auto cfg = boost::json::parse(get("/vm/config").body);
  EXPECT_EQ(cfg.at("boot-source").at("kernel_image_path").as_string(), "k.elf");
  EXPECT_EQ(cfg.at("machine-config").at("vcpu_count").as_int64(), 3);
  EXPECT_EQ(boost::json::parse(get("/machine-config").body).at("mem_size_mib").as_int64(), 32);
  const ApiResponse m = get("/labyrinth/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_EQ(boost::json::parse(m.body).at("pool").at("chunks").as_int64(), 1);
  EXPECT_NE(fault_of(put("/actions", R"({"action_type": "FlushMetrics"})")).find("no metrics file"),
            std::string::npos);
}

TEST_F(ApiControllerTest, FlushMetricsWritesALineToTheMetricsFile) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const std::string path = "/proc/self/fd/" + std::to_string(fds[1]);
  EXPECT_EQ(put("/metrics", R"({"metrics_path": "/nonexistent/m"})").status, 400u);
  EXPECT_EQ(put("/metrics", R"({"metrics_path": ")" + path + R"("})").status, 204u);
  ::close(fds[1]);
  start();
  EXPECT_EQ(put("/actions", R"({"action_type": "FlushMetrics"})").status, 204u);
  char buf[4096];
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  ASSERT_GT(n, 0);
  const std::string line(buf, static_cast<size_t>(n));
  ASSERT_EQ(line.back(), '\n');
  const auto j = boost::json::parse(line);
  EXPECT_TRUE(j.as_object().contains("utc_timestamp_ms"));
  EXPECT_EQ(j.at("pool").at("chunks").as_int64(), 1);
}

}  // namespace
}  // namespace labyrinth::vmm::api
