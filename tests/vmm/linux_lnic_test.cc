// Debian's stock kernel with an lnic: the out-of-tree driver (guest/linux/lnic/, built
// against the kit's headers and packed into the test initramfs) binds the PCI lnic, the
// interface comes up with the device's MAC and carrier, a pktgen backend sends a known
// number of frames which the kernel receives and counts and an AF_PACKET receiver in the
// guest checks (pattern and sequence of every payload), then `ip link set down` and
// `rmmod` give every page back: the VMM's pool books show no page with the guest. Two
// guests on the UDP backend ping each other and move TCP both ways; a guest on a TAP
// pings the host; a guest that only transmits gets every TX slot back through the TX
// interrupt; the driver's `ethtool -S` (/bin/labnet stats) agrees with the device.
// The pool runs dry under bursts and recovers with no page lost; the device turns hostile
// (its test-only mode) and the driver refuses, counts, survives and recovers.
// Needs standard KVM (and root for the TAP's namespace): label `linux`, run in the test
// VM (scripts/vm.sh ctest --test-dir build -L linux -R LinuxLnic).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/vmm/linux_guest_fixture.h"
#include "tests/vmm/subprocess.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Child;
using namespace std::chrono_literals;

constexpr const char* kArgs = "console=ttyS0 reboot=k panic=-1";
constexpr const char* kMac = "02:4c:42:00:00:07";

constexpr const char* kIp = "/usr/sbin/ip";

uint64_t num(const json::value& v) {
  return v.to_number<uint64_t>();
}

// The driver's `ethtool -S`, as init prints it after `ip link set down` (labnet stats).
std::map<std::string, uint64_t> ethtool_stats(const std::string& out) {
  std::map<std::string, uint64_t> stats;
  const std::regex line("labnet-stat [^ ]+ ([a-z_]+) ([0-9]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
       ++it) {
    stats[(*it)[1].str()] = std::stoull((*it)[2].str());
  }
  return stats;
}

// Ping round trips (ms) from busybox ping's "time=X ms" lines.
std::vector<double> rtts(const std::string& out) {
  std::vector<double> ms;
  const std::regex line("seq=[0-9]+ ttl=[0-9]+ time=([0-9.]+) ms");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
       ++it) {
    ms.push_back(std::stod((*it)[1].str()));
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

// What the driver counted after the interface went down agrees with the device's
// counters at the end of the VM (nothing moves after ifdown), every page came back
// and nothing was refused on either side.
void expect_driver_matches_device(const std::string& who, const std::string& out,
                                  const json::object& m) {
  SCOPED_TRACE(who);
  const auto st = ethtool_stats(out);
  ASSERT_TRUE(st.contains("tx_packets") && st.contains("dev_violations")) << out;
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  // Every descriptor the driver posted was consumed by the device: sent or dropped by
  // the backend (a UDP peer not yet listening).
  EXPECT_EQ(st.at("tx_packets"), num(nic.at("tx_frames")) + num(nic.at("tx_drops")));
  // Every completion the device wrote reached the stack or was drained at the stop.
  EXPECT_EQ(st.at("rx_packets") + st.at("rx_drained"), num(nic.at("rx_frames")));
  EXPECT_GT(st.at("tx_irqs"), 0u);
  EXPECT_LE(st.at("tx_irqs"), num(nic.at("tx_irqs")));
  EXPECT_EQ(st.at("tx_in_flight"), 0u);
  EXPECT_EQ(st.at("pages_held"), 0u);
  EXPECT_EQ(st.at("dev_pages_held"), 0u);
  EXPECT_EQ(st.at("dev_violations"), 0u);
  for (const char* refused :
       {"rx_bad_addr", "rx_bad_len", "rx_bad_flags", "rx_page_twice", "rx_seq_gaps",
        "rx_seq_backward", "rx_no_skb", "broken_rx_prod", "broken_ret_cons", "broken_tx_cons",
        "broken", "tx_busy", "tx_too_long", "tx_broken_drops", "tx_dropped"}) {
    EXPECT_EQ(st.at(refused), 0u) << refused;
  }
  // After rmmod the pool's books show no page with the guest.
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(m.at("pool").at("in_use")), 0u) << json::serialize(m.at("pool"));
  EXPECT_EQ(num(m.at("pool").at("violations")), 0u);
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
}

class LinuxLnic : public testing::LinuxGuestTest {
 protected:
  void SetUp() override {
    LinuxGuestTest::SetUp();
    require_standard_kvm();
  }

  // Writes dir_/NAME.json: the kit's kernel and initramfs, `boot_args` after kArgs, one
  // vCPU and 256 MiB, and `labyrinth` as the "labyrinth" section (JSON). Returns its path.
  std::string write_config(const std::string& name, const std::string& boot_args,
                           const std::string& labyrinth) const {
    const std::string path = (dir_ / (name + ".json")).string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_LINUX_KERNEL
                        << R"(", "initrd_path": ")" << LABYRINTH_LINUX_INITRAMFS
                        << R"(", "boot_args": ")" << kArgs << " " << boot_args
                        << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},)"
                        << R"( "labyrinth": )" << labyrinth << "}";
    return path;
  }
  // One lnic (id lnic0) with `mac` on `backend` (JSON), and `extra` sections before it;
  // `lnic_keys` ("key": value, ...) are added to the lnic's own object.
  static std::string one_lnic(const std::string& mac, const std::string& backend,
                              const std::string& extra = "", const std::string& lnic_keys = "") {
    return "{" + extra + R"("lnics": [{"id": "lnic0", "guest_mac": ")" + mac + R"(", "backend": )" +
           backend + (lnic_keys.empty() ? "" : ", " + lnic_keys) + "}]}";
  }

  // A Linux guest with one lnic whose pktgen sends `frames` frames once it is enabled,
  // at 250 a second: the 256-entry RX ring then holds a second of frames if the host
  // stalls the VMM (a late pacer delivers its backlog at once). At 1,000 a second a
  // half-second stall of the TCG test VM on a loaded host overflowed it (ring_full 373,
  // the pacer's max lateness 509 ms), and the test wants every frame delivered.
  std::string config(uint64_t frames) const {
    const std::string n = std::to_string(frames);
    return write_config(
        "vm",
        std::string("labyrinth.test=lnic-rx labyrinth.mac=") + kMac + " labyrinth.frames=" + n,
        one_lnic(kMac, R"({"type": "pktgen", "rate_pps": 250, "burst": 1,)"
                       R"( "frame_size": 128, "count": )" +
                           n + "}"));
  }
  // A Linux guest running init's lnic-tx: `frames` frames out, nothing in (a UDP backend
  // whose peer port nobody listens on; nothing is sent to its own).
  std::string tx_config(uint64_t frames) const {
    const int port = 40000 + static_cast<int>(::getpid() % 10000) * 2;
    return write_config("tx", "labyrinth.test=lnic-tx labyrinth.frames=" + std::to_string(frames),
                        one_lnic(kMac, R"({"type": "udp", "local_port": )" + std::to_string(port) +
                                           R"(, "peer_port": )" + std::to_string(port + 1) + "}"));
  }
  // A Linux guest running init's lnic-burst on a pool of kPoolPages pages: pktgen sends
  // bursts of 200 frames, 5 a second, `count` in all; each burst finds at most the whole
  // pool (the interrupt comes at the burst's end, so nothing is returned during it).
  static constexpr uint64_t kPoolPages = 64;
  std::string burst_config(uint64_t frames, uint64_t count) const {
    return write_config(
        "burst",
        std::string("labyrinth.test=lnic-burst labyrinth.mac=") + kMac +
            " labyrinth.frames=" + std::to_string(frames),
        one_lnic(kMac,
                 R"({"type": "pktgen", "rate_pps": 1000, "burst": 200, "frame_size": 128,)"
                 R"( "count": )" +
                     std::to_string(count) + "}",
                 R"("pool": {"chunk_size_kib": )" + std::to_string(kPoolPages * 4) +
                     R"(, "initial_chunks": 1, "max_chunks": 1, "min_pages": 8,)"
                     R"( "low_pages": 16, "high_pages": 32}, )"));
  }
  // A Linux guest running init's lnic-hostile: an lnic whose first activations write
  // `kinds` (test_hostile, one per activation) among pktgen's frames (endless, 250 a
  // second); init checks that `frames` arrive after each kind and after the last reset.
  std::string hostile_config(const std::vector<std::string>& kinds, uint64_t frames) const {
    std::string list;
    for (const std::string& k : kinds) list += (list.empty() ? "\"" : ", \"") + k + "\"";
    return write_config(
        "hostile",
        "labyrinth.test=lnic-hostile labyrinth.cycles=" + std::to_string(kinds.size()) +
            " labyrinth.frames=" + std::to_string(frames),
        one_lnic(kMac, R"({"type": "pktgen", "rate_pps": 250, "burst": 1, "frame_size": 128})", "",
                 R"("test_hostile": [)" + list + "]"));
  }
  // A Linux guest running init's lnic-net with one lnic on `backend` (JSON).
  std::string net_config(const std::string& name, const std::string& mac, const std::string& ip,
                         const std::string& peer, uint64_t bytes,
                         const std::string& backend) const {
    return write_config(name,
                        "labyrinth.test=lnic-net labyrinth.ip=" + ip + " labyrinth.peer=" + peer +
                            " labyrinth.bytes=" + std::to_string(bytes) + " labyrinth.pings=20",
                        one_lnic(mac, backend));
  }
  std::vector<std::string> run_args(const std::string& cfg, const std::string& name) const {
    return {LABYRINTH_BINARY, "run",
            "--config",       cfg,
            "--metrics",      (dir_ / (name + ".metrics.json")).string()};
  }
  Child::Result run(const std::string& cfg) {
    metrics_ = (dir_ / "metrics.json").string();
    return Child::run({LABYRINTH_BINARY, "run", "--config", cfg, "--metrics", metrics_}, 900s);
  }
  json::object metrics(const std::string& name = "") const {
    std::ifstream in(name.empty() ? metrics_ : (dir_ / (name + ".metrics.json")).string());
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str()).as_object();
  }

  std::string metrics_;
};

TEST_F(LinuxLnic, KernelReceivesEveryGeneratedFrameAndUnloadReturnsEveryPage) {
  constexpr uint64_t kFrames = 1000;
  auto r = run(config(kFrames));
  // The guest's own lines and the driver's, for the log.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("labyrinth-lnic:") || line.starts_with("labnet:") ||
        line.find(": stopped: ") != std::string::npos) {
      std::cout << "  guest: " << line << "\n";
    }
  }
  std::cout << "  labyrinth run: " << r.seconds << " s wall\n";
  // On failure the device's counters say where frames went (rx_drops by reason).
  ASSERT_EQ(r.status, 0) << r.out << r.err
                         << (fs::exists(metrics_) ? json::serialize(metrics()) : "no metrics");
  EXPECT_NE(r.out.find("labyrinth-test: lnic-rx status 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string(" ") + kMac + " carrier 1"), std::string::npos) << r.out;
  // A receiver in the guest (AF_PACKET, labnet pktgen-recv) got every frame in order,
  // every payload byte as the generator wrote it.
  EXPECT_NE(r.out.find("labnet: pktgen-recv " + std::to_string(kFrames) + " frames (seq 0.." +
                       std::to_string(kFrames - 1) + ", 128 bytes, pattern "),
            std::string::npos)
      << r.out;

  // The kernel's count (/sys/class/net/*/statistics) is every frame the device delivered.
  std::smatch kernel;
  ASSERT_TRUE(std::regex_search(r.out, kernel, std::regex("labyrinth-lnic: rx_packets ([0-9]+)")))
      << r.out;
  const json::object m = metrics();
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  EXPECT_EQ(num(nic.at("rx_frames")), kFrames) << json::serialize(nic);
  EXPECT_EQ(std::stoull(kernel[1].str()), num(nic.at("rx_frames")));

  // The driver's own report at ifdown: no completion refused, nothing held, not broken.
  std::smatch report;
  ASSERT_TRUE(std::regex_search(
      r.out, report,
      std::regex("stopped: rx_packets ([0-9]+) .* bad_addr 0 bad_len 0 bad_flags 0 "
                 "page_twice 0 seq_gaps 0 seq_backward 0 no_skb 0 drained 0 held 0 "
                 "tx_in_flight 0 device_pages_held 0 violations 0 broken 0")))
      << r.out;
  EXPECT_EQ(std::stoull(report[1].str()), kFrames);

  // After rmmod the pool's books show no page with the guest, and every page came back.
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(nic.at("pages_returned")), kFrames);
  // The driver acknowledged LNIC_F_RET_EVENT: some of those pages came back without a
  // doorbell (the device took them after an RX batch or at RX_STOP), each exactly once.
  EXPECT_GT(num(nic.at("pages_returned_unrung")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(m.at("pool").at("in_use")), 0u) << json::serialize(m.at("pool"));
  EXPECT_EQ(num(m.at("pool").at("violations")), 0u);
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
  EXPECT_EQ(num(nic.at("controls").at("rx_stops")), 1u);
}

// Two Linux guests, each with an lnic on the UDP backend (127.0.0.1, mirrored ports):
// each pings the other 20 times and sends the other kBytes of TCP (issue 17's "10 MB each
// way": 10,000,000 bytes), checked byte by byte by the receiver; every transmit went
// through the driver's TX ring and completion.
TEST_F(LinuxLnic, TwoGuestsOnUdpPingEachOtherAndMoveTcpBothWays) {
  constexpr uint64_t kBytes = 10'000'000;
  const int port = 20000 + static_cast<int>(::getpid() % 20000) * 2;
  auto udp = [](int local, int peer) {
    return R"({"type": "udp", "local_port": )" + std::to_string(local) + R"(, "peer_port": )" +
           std::to_string(peer) + "}";
  };
  const std::string a =
      net_config("a", "02:4c:42:00:00:0a", "10.0.3.1/24", "10.0.3.2", kBytes, udp(port, port + 1));
  const std::string b =
      net_config("b", "02:4c:42:00:00:0b", "10.0.3.2/24", "10.0.3.1", kBytes, udp(port + 1, port));
  Child ca = Child::spawn(run_args(a, "a"));
  Child cb = Child::spawn(run_args(b, "b"));
  auto ra = ca.wait(1500s);
  auto rb = cb.wait(1500s);
  for (const auto* r : {&ra, &rb}) {
    const char* who = r == &ra ? "guest a" : "guest b";
    std::istringstream lines(r->out);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("labyrinth-lnic:") || line.starts_with("labnet:") ||
          line.find("round-trip") != std::string::npos ||
          line.find(": stopped: ") != std::string::npos) {
        std::cout << "  " << who << ": " << line << "\n";
      }
    }
    const auto ms = rtts(r->out);
    if (!ms.empty()) {
      std::cout << "  " << who << ": ping RTT ms p50 " << ms[ms.size() / 2] << " p99 "
                << ms[std::min(ms.size() - 1, ms.size() * 99 / 100)] << " (" << ms.size()
                << " samples)\n";
    }
    std::cout << "  " << who << ": labyrinth run " << r->seconds << " s wall\n";
  }
  ASSERT_EQ(ra.status, 0) << ra.out << ra.err;
  ASSERT_EQ(rb.status, 0) << rb.out << rb.err;
  for (const auto* r : {&ra, &rb}) {
    EXPECT_NE(r->out.find("labyrinth-test: lnic-net status 0"), std::string::npos) << r->out;
    EXPECT_NE(r->out.find("20 packets transmitted, 20 packets received, 0% packet loss"),
              std::string::npos)
        << r->out;
    EXPECT_NE(r->out.find("labnet: sent " + std::to_string(kBytes) + " bytes"), std::string::npos)
        << r->out;
    EXPECT_NE(r->out.find("labnet: received " + std::to_string(kBytes) + " bytes"),
              std::string::npos)
        << r->out;
  }
  expect_driver_matches_device("guest a", ra.out, metrics("a"));
  expect_driver_matches_device("guest b", rb.out, metrics("b"));
}

// Transmit only: no frame is received, so no RX interrupt runs NAPI and the driver gets
// its TX slots back only from the device's TX interrupt. Ten rings' worth of frames all
// reach the device, and the queue was woken as often as it was stopped.
TEST_F(LinuxLnic, TransmitOnlyTrafficIsCompletedByTheTxInterrupt) {
  constexpr uint64_t kFrames = 1280;  // ten times the driver's 128-entry TX ring
  auto r = Child::run(run_args(tx_config(kFrames), "tx"), 900s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("labnet: sent " + std::to_string(kFrames) + " frames"), std::string::npos)
      << r.out;
  const auto st = ethtool_stats(r.out);
  ASSERT_TRUE(st.contains("tx_packets") && st.contains("tx_queue_wakes")) << r.out;
  std::cout << "  guest: tx_packets " << st.at("tx_packets") << ", tx_irqs " << st.at("tx_irqs")
            << ", polls " << st.at("polls") << ", queue stops " << st.at("tx_queue_stops")
            << ", wakes " << st.at("tx_queue_wakes") << "\n";
  EXPECT_EQ(st.at("tx_packets"), kFrames);
  EXPECT_EQ(st.at("rx_packets"), 0u);
  EXPECT_EQ(st.at("rx_irqs"), 0u) << "nothing was received: no RX interrupt may have run";
  EXPECT_GT(st.at("tx_irqs"), 0u);
  EXPECT_EQ(st.at("tx_queue_wakes"), st.at("tx_queue_stops"));
  const json::object m = metrics("tx");
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  EXPECT_EQ(num(nic.at("tx_frames")) + num(nic.at("tx_drops")), kFrames) << json::serialize(nic);
  EXPECT_EQ(num(nic.at("rx_frames")), 0u);
  expect_driver_matches_device("tx-only guest", r.out, m);
}

// A Linux guest with an lnic on a TAP device pings the host's end of it. The TAP lives
// in a network namespace the test creates and removes; labyrinth runs inside it.
TEST_F(LinuxLnic, GuestOnTapPingsTheHost) {
  const std::string ns = "lablnic" + std::to_string(::getpid());
  const std::string tap = "lnictap" + std::to_string(::getpid() % 100000);
  auto ip = [](std::vector<std::string> args) {
    args.insert(args.begin(), kIp);
    return Child::run(args, 30s);
  };
  ASSERT_EQ(ip({"netns", "add", ns}).status, 0);
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    (void)ip({"-n", ns, "link", "del", tap});
    EXPECT_EQ(ip({"netns", "del", ns}).status, 0);
    EXPECT_EQ(ip({"netns", "list"}).out.find(ns), std::string::npos) << "the namespace is gone";
  }};
  for (std::vector<std::string> step :
       {std::vector<std::string>{"-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"},
        {"-n", ns, "addr", "add", "10.0.2.1/24", "dev", tap},
        {"-n", ns, "link", "set", tap, "up"},
        {"-n", ns, "link", "set", "lo", "up"}}) {
    auto r = ip(step);
    ASSERT_EQ(r.status, 0) << step[2] << " " << step[3] << ": " << r.err;
  }
  const std::string cfg = net_config("tap", kMac, "10.0.2.2/24", "10.0.2.1", 0,
                                     R"({"type": "tap", "host_dev_name": ")" + tap + R"("})");
  std::vector<std::string> args = run_args(cfg, "tap");
  args.insert(args.begin(), {kIp, "netns", "exec", ns});
  auto r = Child::run(args, 900s);
  std::smatch rtt;
  if (std::regex_search(r.out, rtt, std::regex("round-trip min/avg/max = [0-9./]+ ms"))) {
    std::cout << "  guest -> host ping over lnic (TAP in a namespace): " << rtt.str() << "\n";
  }
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("20 packets transmitted, 20 packets received, 0% packet loss"),
            std::string::npos)
      << r.out;
  expect_driver_matches_device("tap guest", r.out, metrics("tap"));
}

// Exhaustion: pktgen's bursts outrun the guest's returns on a 64-page pool. The device
// drops what finds no page and counts it by reason (every generated frame is delivered or
// a counted drop), the guest keeps receiving once pages come back (3 pools' worth
// delivered: every page reused after the pool ran dry), and after rmmod no page is lost.
TEST_F(LinuxLnic, ExhaustedPoolDropsCountedNoPageLostTrafficRecovers) {
  constexpr uint64_t kFrames = 3 * kPoolPages;
  auto r = run(burst_config(kFrames, 40 * 200));
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("labyrinth-lnic:") || line.find(": stopped: ") != std::string::npos) {
      std::cout << "  guest: " << line << "\n";
    }
  }
  std::cout << "  labyrinth run: " << r.seconds << " s wall\n";
  ASSERT_EQ(r.status, 0) << r.out << r.err
                         << (fs::exists(metrics_) ? json::serialize(metrics()) : "no metrics");
  const json::object m = metrics();
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  const json::object& drops = nic.at("rx_drops").as_object();
  std::cout << "  device: " << json::serialize(drops) << ", rx_frames " << num(nic.at("rx_frames"))
            << ", pool fail_exhausted " << num(m.at("pool").at("fail_exhausted")) << "\n";
  ASSERT_EQ(num(m.at("pool").at("total_pages")), kPoolPages) << json::serialize(m.at("pool"));

  // The pool ran dry and the device said so, by reason; the allocator failed, never waited.
  EXPECT_GT(num(drops.at("no_page")), 0u) << json::serialize(nic);
  EXPECT_GT(num(m.at("pool").at("fail_exhausted")), 0u);
  EXPECT_EQ(num(m.at("pool").at("alloc_wait")), 0u);
  // Every frame generated was delivered or dropped for a counted reason.
  uint64_t dropped = 0;
  for (const auto& [reason, count] : drops) {
    if (reason != "generator_overrun") dropped += num(count);  // never generated
  }
  EXPECT_EQ(num(nic.at("pktgen").at("generated")), num(nic.at("rx_frames")) + dropped);
  // Traffic recovered: more than the pool was delivered, so returned pages were reused.
  EXPECT_GE(num(nic.at("rx_frames")), kFrames);

  // The driver: every completion delivered or drained, nothing refused, nothing held.
  const auto st = ethtool_stats(r.out);
  ASSERT_TRUE(st.contains("rx_packets") && st.contains("dev_violations")) << r.out;
  EXPECT_GE(st.at("rx_packets"), kFrames);
  EXPECT_EQ(st.at("rx_packets") + st.at("rx_drained"), num(nic.at("rx_frames")));
  for (const char* zero :
       {"rx_bad_addr", "rx_bad_len", "rx_page_twice", "rx_seq_gaps", "rx_seq_backward", "broken",
        "pages_held", "dev_pages_held", "dev_violations"}) {
    EXPECT_EQ(st.at(zero), 0u) << zero;
  }
  // No page lost: after rmmod every delivered page came back to the pool.
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(nic.at("pages_returned")), num(nic.at("rx_frames")));
  EXPECT_EQ(num(m.at("pool").at("in_use")), 0u) << json::serialize(m.at("pool"));
  EXPECT_EQ(num(m.at("pool").at("free_clean")) + num(m.at("pool").at("free_dirty")), kPoolPages);
  EXPECT_EQ(num(m.at("pool").at("violations")), 0u);
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
}

// The device turned hostile (its test-only mode, docs/lnic.md "The hostile device"), one
// kind per activation in one guest boot: completions naming no pool page, bad lengths, a
// page the driver already holds, RX prod beyond the ring. The driver refuses, counts and
// logs each, goes to "broken" on the impossible index only, the kernel stays up (no oops,
// BUG, WARNING or panic in its log after insmod), frames flow after each refusal and
// after `ip link set down`/`up` reset the broken device, and after rmmod the pool's books
// show no page with the guest.
TEST_F(LinuxLnic, HostileDeviceIsRefusedCountedAndAResetRecovers) {
  constexpr uint64_t kFrames = 40;
  const std::vector<std::string> kinds = {"bad_address", "bad_length", "page_twice",
                                          "rx_prod_beyond_ring"};
  auto r = run(hostile_config(kinds, kFrames));
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("labyrinth-hostile:") || line.find(" lnic") != std::string::npos) {
      std::cout << "  guest: " << line << "\n";
    }
  }
  std::cout << "  labyrinth run: " << r.seconds << " s wall\n";
  ASSERT_EQ(r.status, 0) << r.out << r.err
                         << (fs::exists(metrics_) ? json::serialize(metrics()) : "no metrics");
  // The guest ran to its end (the kernel stayed up) and its log since insmod is clean.
  EXPECT_NE(r.out.find("labyrinth-test: lnic-hostile status 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("labyrinth-hostile: kernel log: 0 bad lines since insmod"),
            std::string::npos)
      << r.out;
  // The driver logged what it refused: the addresses outside the window, the page named
  // twice, and the broken state (a bad length is only counted).
  EXPECT_NE(r.out.find("not a page of the pool window"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the driver already holds"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("device broken: RX prod more than a ring ahead of cons"), std::string::npos)
      << r.out;

  // The driver's `ethtool -S` after each cycle's ifdown (its counters add up over cycles).
  std::vector<std::map<std::string, uint64_t>> cycle;
  std::vector<int> broken;
  const std::regex head("labyrinth-hostile: cycle ([0-9]+) broken ([01])");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), head);
       it != std::sregex_iterator(); ++it) {
    const size_t from = it->position() + it->length();
    const size_t to = r.out.find("labyrinth-hostile:", from);
    cycle.push_back(ethtool_stats(r.out.substr(from, to == std::string::npos ? to : to - from)));
    broken.push_back(std::stoi((*it)[2].str()));
  }
  ASSERT_EQ(cycle.size(), kinds.size() + 1) << r.out;
  struct Want {
    uint64_t bad_addr, bad_len, page_twice, broken_rx_prod;
    int broken;
  };
  const Want want[] = {
      {3, 0, 0, 0, 0}, {3, 2, 0, 0, 0}, {3, 2, 1, 0, 0}, {3, 2, 1, 1, 1}, {3, 2, 1, 1, 0}};
  uint64_t before = 0;  // rx_packets at the previous cycle's ifdown
  for (size_t c = 0; c < cycle.size(); ++c) {
    SCOPED_TRACE("cycle " + std::to_string(c + 1) + " (" +
                 (c < kinds.size() ? kinds[c] : std::string("correct device")) + ")");
    const auto& st = cycle[c];
    ASSERT_TRUE(st.contains("rx_bad_addr") && st.contains("broken")) << r.out;
    EXPECT_EQ(st.at("rx_bad_addr"), want[c].bad_addr);
    EXPECT_EQ(st.at("rx_bad_len"), want[c].bad_len);
    EXPECT_EQ(st.at("rx_page_twice"), want[c].page_twice);
    EXPECT_EQ(st.at("broken_rx_prod"), want[c].broken_rx_prod);
    EXPECT_EQ(st.at("broken"), static_cast<uint64_t>(want[c].broken));
    EXPECT_EQ(broken[c], want[c].broken);
    // Refused entries are errors; nothing else went wrong: no seq gap (hostile entries
    // take no seq, or one of their own), no other impossible index, no refusal by the
    // device, nothing left held at ifdown.
    EXPECT_EQ(st.at("rx_errors"), want[c].bad_addr + want[c].bad_len + want[c].page_twice);
    for (const char* zero : {"rx_bad_flags", "rx_seq_gaps", "rx_seq_backward", "broken_ret_cons",
                             "broken_tx_cons", "pages_held", "dev_pages_held", "dev_violations"}) {
      EXPECT_EQ(st.at(zero), 0u) << zero;
    }
    // Frames flowed after the refusal (and, in the last cycle, after the reset).
    if (want[c].broken == 0) {
      EXPECT_GE(st.at("rx_packets"), before + kFrames);
    }
    before = st.at("rx_packets");
  }

  // The device wrote every kind once, and the books are exact after rmmod: no page with
  // the guest, none in use, nothing refused on the host side.
  const json::object m = metrics();
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  EXPECT_EQ(num(nic.at("test_hostile_written")), 3u + 2u + 1u + 1u) << json::serialize(nic);
  EXPECT_GT(num(nic.at("rx_drops").at("test_hostile")), 0u);
  EXPECT_EQ(num(nic.at("controls").at("enables")), kinds.size() + 1);
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(nic.at("pages_returned")), num(nic.at("rx_frames")) + 2u);  // + bad_length's
  EXPECT_EQ(num(m.at("pool").at("in_use")), 0u) << json::serialize(m.at("pool"));
  EXPECT_EQ(num(m.at("pool").at("violations")), 0u);
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
}

}  // namespace
}  // namespace labyrinth
