// Debian's stock kernel with virtio-net: Linux's own virtio_pci and virtio_net drivers
// bring eth0 up on labyrinth's virtio PCI function; traffic goes through a TAP device in
// a network namespace each test creates and removes (ip netns; labyrinth and the host
// end run inside it). Needs standard KVM and root: label `linux`, run in the test VM
// (scripts/vm.sh ctest --test-dir build -L linux -R LinuxNet).
// The configurations hold only Firecracker's keys: boot-source, machine-config and
// network-interfaces.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>

#include "tests/vmm/linux_guest_fixture.h"
#include "tests/vmm/subprocess.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Child;
using namespace std::chrono_literals;

// A user's plain command line: no i8042.* options (the i8042 answers Linux's probe at once).
constexpr const char* kArgs = "console=ttyS0 reboot=k panic=-1";
constexpr const char* kIp = "/usr/sbin/ip";
constexpr const char* kMac = "06:00:ac:10:00:07";

class LinuxNet : public testing::LinuxGuestTest {
 protected:
  void SetUp() override {
    LinuxGuestTest::SetUp();
    require_standard_kvm();
    if (HasFatalFailure()) return;
    ns_ = "labnet" + std::to_string(::getpid());
    tap_ = "labtap" + std::to_string(::getpid() % 100000);
    ip({"netns", "add", ns_});
    created_ = true;
    ip({"-n", ns_, "tuntap", "add", "dev", tap_, "mode", "tap"});
    ip({"-n", ns_, "addr", "add", "10.0.2.1/24", "dev", tap_});
    ip({"-n", ns_, "link", "set", tap_, "up"});
    ip({"-n", ns_, "link", "set", "lo", "up"});
  }
  void TearDown() override {
    if (created_) {
      (void)Child::run({kIp, "-n", ns_, "link", "del", tap_}, 30s);
      auto r = Child::run({kIp, "netns", "del", ns_}, 30s);
      EXPECT_EQ(r.status, 0) << r.err;
      auto list = Child::run({kIp, "netns", "list"}, 30s);
      EXPECT_EQ(list.out.find(ns_), std::string::npos) << "the namespace is gone";
    }
    LinuxGuestTest::TearDown();
  }

  void ip(std::vector<std::string> args) {
    args.insert(args.begin(), kIp);
    auto r = Child::run(args, 30s);
    ASSERT_EQ(r.status, 0) << args[1] << " " << args[2] << ": " << r.err;
  }
  // Runs argv inside the namespace.
  std::vector<std::string> in_ns(std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {kIp, "netns", "exec", ns_});
    return argv;
  }
  // Firecracker's keys only.
  std::string config(const std::string& test, const std::string& extra = "") {
    const std::string path = (dir_ / ("vm" + std::to_string(n_++) + ".json")).string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_LINUX_KERNEL
                        << R"(", "initrd_path": ")" << LABYRINTH_LINUX_INITRAMFS
                        << R"(", "boot_args": ")" << kArgs << " labyrinth.test=" << test
                        << " labyrinth.mac=" << kMac << extra
                        << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},)"
                        << R"( "network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")"
                        << tap_ << R"(", "guest_mac": ")" << kMac << R"("}]})";
    return path;
  }
  Child::Result run(const std::string& cfg) {
    metrics_ = (dir_ / "metrics.json").string();
    return Child::run(
        in_ns({LABYRINTH_BINARY, "run", "--config", cfg, "--metrics", metrics_, "--stats"}), 900s);
  }
  // Figures for the log: when init ran, the guest's own lines, and the host_rx table.
  static void print_figures(const Child::Result& r) {
    std::istringstream out(r.out);
    for (std::string line; std::getline(out, line);) {
      if (line.starts_with("labyrinth-init: reached") || line.starts_with("labyrinth-net:") ||
          line.find("round-trip") != std::string::npos) {
        std::cout << "  guest: " << line << "\n";
      }
    }
    const size_t table = r.err.find("virtio-net eth0 (TAP");
    if (table != std::string::npos) std::cout << r.err.substr(table);
    std::cout << "  labyrinth run: " << r.seconds << " s wall\n";
  }
  json::object nic() const {
    std::ifstream in(metrics_);
    std::stringstream text;
    text << in.rdbuf();
    auto v = json::parse(text.str());
    return v.at("virtio_net").as_array().at(0).as_object();
  }

  std::string ns_, tap_, metrics_;
  bool created_ = false;
  int n_ = 0;
};

TEST_F(LinuxNet, Eth0ComesUpWithLinkAndTheConfiguredMac) {
  auto r = run(config("net-link"));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(std::string("labyrinth-net: eth0 ") + kMac +
                       " carrier 1 operstate up "
                       "driver virtio_net"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("labyrinth-test: net-link status 0"), std::string::npos);
  const json::object m = nic();
  EXPECT_EQ(m.at("transport").at("activations").to_number<uint64_t>(), 1u);
  EXPECT_EQ(m.at("transport").at("features_rejected").to_number<uint64_t>(), 0u);
  EXPECT_EQ(m.at("malformed_chains").to_number<uint64_t>(), 0u) << "Linux's driver is well-formed";
}

TEST_F(LinuxNet, GuestPingsTheHost) {
  auto r = run(config("net-ping"));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  print_figures(r);
  EXPECT_NE(r.out.find("10 packets transmitted, 10 packets received, 0% packet loss"),
            std::string::npos)
      << r.out;
  std::smatch rtt;
  if (std::regex_search(r.out, rtt, std::regex("round-trip min/avg/max = [0-9./]+ ms"))) {
    std::cout << "guest -> host ping (TAP in a namespace): " << rtt.str() << "\n";
    RecordProperty("rtt", rtt.str());
  }
  const json::object m = nic();
  EXPECT_GE(m.at("rx_frames").to_number<uint64_t>(), 10u);
  EXPECT_GE(m.at("tx_frames").to_number<uint64_t>(), 10u);
  // Every received frame has its host RX span recorded.
  EXPECT_EQ(m.at("latency").at("spans").at("host_rx").at("count").to_number<uint64_t>(),
            m.at("rx_frames").to_number<uint64_t>());
  EXPECT_NE(r.err.find("virtio-net eth0 (TAP " + tap_ + ")"), std::string::npos)
      << "--stats prints the host_rx table: " << r.err;
}

TEST_F(LinuxNet, MovesTenMegabytesOverTcpEachWay) {
  constexpr uint64_t kBytes = 10 << 20;
  Child sink = Child::spawn(in_ns({LABYRINTH_NET_PEER, "sink", "5001", std::to_string(kBytes)}));
  Child source =
      Child::spawn(in_ns({LABYRINTH_NET_PEER, "source", "5002", std::to_string(kBytes)}));
  ASSERT_TRUE(sink.wait_for_output("listening", 30s)) << sink.err();
  ASSERT_TRUE(source.wait_for_output("listening", 30s)) << source.err();
  auto r = run(config("net-tcp", " labyrinth.bytes=" + std::to_string(kBytes)));
  auto s = sink.wait(60s);
  auto o = source.wait(60s);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("received " + std::to_string(kBytes) + " bytes"), std::string::npos)
      << r.out;
  EXPECT_EQ(s.status, 0) << s.out << s.err;
  EXPECT_EQ(o.status, 0) << o.out << o.err;
  std::cout << "guest -> host: " << s.out << "host -> guest: " << o.out;
  print_figures(r);
  const json::object m = nic();
  EXPECT_GE(m.at("rx_bytes").to_number<uint64_t>(), kBytes);
  EXPECT_GE(m.at("tx_bytes").to_number<uint64_t>(), kBytes);
  EXPECT_EQ(m.at("malformed_chains").to_number<uint64_t>(), 0u);
}

TEST_F(LinuxNet, BadNetworkInterfacesAreOneLineConfigErrors) {
  auto expect_error = [](const Child::Result& r, const std::string& field) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.err.find("labyrinth: config error: " + field + ": "), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  auto write = [&](const std::string& ifaces) {
    const std::string path = (dir_ / ("bad" + std::to_string(n_++) + ".json")).string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_LINUX_KERNEL
                        << R"(", "initrd_path": ")" << LABYRINTH_LINUX_INITRAMFS
                        << R"(", "boot_args": ")" << kArgs << R"("}, "network-interfaces": )"
                        << ifaces << "}";
    return path;
  };
  auto one = [&](const std::string& tap, const std::string& mac) {
    return R"([{"iface_id": "eth0", "host_dev_name": ")" + tap + R"(", "guest_mac": ")" + mac +
           R"("}])";
  };
  // An existing interface that is not a TAP cannot be attached to.
  auto r = Child::run(in_ns({LABYRINTH_BINARY, "run", "--config", write(one("lo", kMac))}), 60s);
  expect_error(r, "network-interfaces[0].host_dev_name");
  EXPECT_NE(r.err.find("cannot open or create TAP device \"lo\""), std::string::npos) << r.err;
  r = Child::run({LABYRINTH_BINARY, "run", "--config", write(one("this-name-is-too-long", kMac))},
                 60s);
  expect_error(r, "network-interfaces[0].host_dev_name");
  for (const char* mac : {"06:00:ac:10:00", "zz:00:ac:10:00:07", "01:00:5e:00:00:01"}) {
    r = Child::run({LABYRINTH_BINARY, "run", "--config", write(one(tap_, mac))}, 60s);
    expect_error(r, "network-interfaces[0].guest_mac");
  }
  r = Child::run({LABYRINTH_BINARY, "run", "--config",
                  write(R"([{"iface_id": "eth0", "host_dev_name": "t1"},)"
                        R"( {"iface_id": "eth0", "host_dev_name": "t2"}])")},
                 60s);
  expect_error(r, "network-interfaces[1].iface_id");
  EXPECT_NE(r.err.find("duplicate iface_id \"eth0\""), std::string::npos) << r.err;
  r = Child::run({LABYRINTH_BINARY, "run", "--config",
                  write(R"([{"iface_id": "eth0", "host_dev_name": "t1", "rx_queue": 1}])")},
                 60s);
  expect_error(r, "network-interfaces[0].rx_queue");
  r = Child::run({LABYRINTH_BINARY, "run", "--config", write(R"([{"host_dev_name": "t1"}])")}, 60s);
  expect_error(r, "network-interfaces[0].iface_id");
}

}  // namespace
}  // namespace labyrinth
