// The lnic end to end: build/labyrinth with real guests (guest/programs/lnic_*) on
// real KVM. Each test writes its own config (absolute paths) to a temp dir.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/vmm/subprocess.h"

namespace labyrinth::devices::lnic {
namespace {

using labyrinth::testing::Child;
namespace json = boost::json;

class LnicVmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access("/dev/kvm", R_OK | W_OK), 0)
        << "/dev/kvm is needed (label lnic-kvm: run it in the test VM)";
    dir_ = std::filesystem::temp_directory_path() /
           ("lnic-vm-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // A config for guest `name` with `boot_args` and the given lnics JSON array.
  std::string config(const std::string& name, const std::string& boot_args,
                     const std::string& lnics, const std::string& pool = "") {
    const std::string path = (dir_ / (name + std::to_string(n_++) + ".json")).string();
    std::ofstream f(path);
    f << "{\"boot-source\": {\"kernel_image_path\": \"" << LABYRINTH_GUEST_DIR << "/" << name
      << ".elf\", \"boot_args\": \"" << boot_args << "\"},\n"
      << " \"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64},\n"
      << " \"serial\": {\"input\": \"none\"},\n"
      << " \"labyrinth\": {" << (pool.empty() ? "" : "\"pool\": " + pool + ", ")
      << "\"lnics\": " << lnics << "}}\n";
    return path;
  }
  std::string metrics_path() {
    return (dir_ / ("metrics" + std::to_string(n_++) + ".json")).string();
  }
  static json::object read_json(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return json::parse(s.str()).as_object();
  }
  static uint64_t num(const json::value& v) {
    return v.is_uint64() ? v.as_uint64() : static_cast<uint64_t>(v.as_int64());
  }
  // Checks the pool's books balance after the VM ended: every page that is not free
  // is one the guest still holds through some lnic.
  static void expect_exact_accounting(const json::object& m) {
    const auto& pool = m.at("pool").as_object();
    uint64_t with_guest = 0;
    for (const auto& n : m.at("lnics").as_array())
      with_guest += num(n.as_object().at("pages_with_guest"));
    EXPECT_EQ(num(pool.at("in_use")), with_guest);
    EXPECT_EQ(num(pool.at("free_clean")) + num(pool.at("free_dirty")) + num(pool.at("in_use")),
              num(pool.at("total_pages")));
    // The device settles every bad return against its own record of deliveries and
    // never asks the pool to act on one: the pool sees no violation at all.
    EXPECT_EQ(num(pool.at("violations")), 0u);
  }

  // A well-behaved guest on a correct device: no violation of any kind on any lnic,
  // and the driver never reported the device (pages delivered twice, completions out
  // of order, cons past prod: "DEVICE BUG" lines).
  static void expect_clean_run(const json::object& m, const std::string& guest_out) {
    for (const auto& n : m.at("lnics").as_array()) {
      for (const auto& [kind, count] : n.at("violations").as_object()) {
        EXPECT_EQ(num(count), 0u) << n.at("id").as_string() << " " << kind;
      }
    }
    EXPECT_EQ(guest_out.find("DEVICE BUG"), std::string::npos) << guest_out;
    EXPECT_EQ(guest_out.find("out of order"), std::string::npos) << guest_out;
  }

  std::filesystem::path dir_;
  int n_ = 0;
};

TEST_F(LnicVmTest, SinkPollsPktgenTrafficAndVerifiesEveryFrame) {
  const std::string m = metrics_path();
  auto r = Child::run(
      {LABYRINTH_BINARY, "run", "--metrics", m, "--config",
       config("lnic_sink", "mode=poll frames=20000",
              R"([{"backend": {"type": "pktgen", "rate_pps": 50000, "frame_size": 128}}])")},
      std::chrono::seconds(90));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // The sink's summary line, field by field: its "stopped" line before it carries
  // pattern_errors=, which a bare search for "errors=0" would take for this one.
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(lnic_sink: frames=[1-9][0-9]* bytes=[0-9]+ gaps=[0-9]+ errors=0\s)")))
      << r.out;
  const auto j = read_json(m);
  const auto& nic = j.at("lnics").as_array()[0].as_object();
  EXPECT_GE(num(nic.at("rx_frames")), 20000u);
  EXPECT_EQ(num(j.at("pool").at("violations")), 0u);
  expect_exact_accounting(j);
}

// The driver's unload on the PCI lnic (ABI v3): RX_STOP while pktgen keeps sending, the
// last completions consumed, every page returned (PAGES_HELD 0), RESET waited for. The
// pool's books then show no page with the guest.
TEST_F(LnicVmTest, SinkShutdownReturnsEveryPageAndTheGuestHoldsNone) {
  const std::string m = metrics_path();
  auto r = Child::run(
      {LABYRINTH_BINARY, "run", "--metrics", m, "--config",
       config("lnic_sink", "mode=irq frames=3000 shutdown=1",
              R"([{"backend": {"type": "pktgen", "rate_pps": 20000, "frame_size": 64}}])")},
      std::chrono::seconds(90));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(shutdown clean: device PAGES_HELD=0,)")))
      << r.out;
  const auto j = read_json(m);
  const auto& nic = j.at("lnics").as_array()[0].as_object();
  EXPECT_GE(num(nic.at("rx_frames")), 3000u);
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u);
  EXPECT_EQ(num(nic.at("pages_returned")), num(nic.at("rx_frames")));
  EXPECT_EQ(num(j.at("pool").at("in_use")), 0u);
  expect_exact_accounting(j);
  expect_clean_run(j, r.out);
}

TEST_F(LnicVmTest, SinkInInterruptModeHaltsBetweenInterrupts) {
  const std::string m = metrics_path();
  auto r =
      Child::run({LABYRINTH_BINARY, "run", "--metrics", m, "--config",
                  config("lnic_sink", "mode=irq frames=2000",
                         R"([{"backend": {"type": "pktgen", "rate_pps": 2000, "burst": 4}}])")},
                 std::chrono::seconds(90));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const auto j = read_json(m);
  EXPECT_GT(num(j.at("lnics").as_array()[0].at("irqs")), 0u);
  expect_exact_accounting(j);
  expect_clean_run(j, r.out);
}

TEST_F(LnicVmTest, HostileGuestIsCountedAndTheDeviceKeepsWorking) {
  const std::string m = metrics_path();
  auto r = Child::run({LABYRINTH_BINARY, "run", "--metrics", m, "--config",
                       config("lnic_hostile", "frames=500",
                              R"([{"backend": {"type": "pktgen", "rate_pps": 20000}}])")},
                      std::chrono::seconds(120));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;  // the guest saw every check handled and frames flow
  const auto j = read_json(m);
  const auto& v = j.at("lnics").as_array()[0].at("violations").as_object();
  EXPECT_GT(num(v.at("bad_address")), 0u) << r.out;
  EXPECT_GT(num(v.at("double_return")), 0u) << r.out;
  EXPECT_GT(num(v.at("not_owner")), 0u) << r.out;
  EXPECT_GT(num(v.at("stale")), 0u) << r.out;
  EXPECT_GT(num(v.at("bad_index")), 0u) << r.out;
  EXPECT_GT(num(v.at("rejected_config")), 0u) << r.out;
  EXPECT_GE(num(v.at("bad_bar_access")), 4u) << r.out;   // lnic_hostile's check_bar
  EXPECT_GT(num(v.at("ignored_control")), 0u) << r.out;  // its reset storm
  expect_exact_accounting(j);
}

TEST_F(LnicVmTest, ExhaustionDropsAndCountsAndNeverPassesThePoolMaximum) {
  const std::string m = metrics_path();
  // A tiny pool (2 chunks of 64 KiB = 32 pages) and a sink that returns pages in big
  // batches: pktgen outruns the returns, the RX path drops with no_page, traffic goes on.
  auto r = Child::run(
      {LABYRINTH_BINARY, "run", "--metrics", m, "--config",
       config(
           "lnic_sink", "mode=poll frames=5000 ret_batch=16",
           R"([{"backend": {"type": "pktgen", "rate_pps": 200000, "burst": 32}}])",
           R"({"chunk_size_kib": 64, "initial_chunks": 1, "max_chunks": 2, "min_pages": 2, "low_pages": 4, "high_pages": 8})")},
      std::chrono::seconds(90));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const auto j = read_json(m);
  const auto& pool = j.at("pool").as_object();
  EXPECT_LE(num(pool.at("chunks")), 2u);
  EXPECT_LE(num(pool.at("chunks_high_water")), 2u);
  const auto& nic = j.at("lnics").as_array()[0].as_object();
  EXPECT_GT(num(nic.at("rx_drops").at("no_page")), 0u);
  EXPECT_GE(num(nic.at("rx_frames")), 5000u);  // recovered: frames kept coming after drops
  EXPECT_GT(num(pool.at("fail_exhausted")), 0u);
  expect_exact_accounting(j);
}

TEST_F(LnicVmTest, TwoLabyrinthProcessesExchangeFramesOverUdp) {
  // Pick two free loopback ports by binding and releasing them.
  auto free_port = [] {
    const int s = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    close(s);
    return ntohs(a.sin_port);
  };
  const int pa = free_port(), pb = free_port();
  auto udp = [](int local, int peer) {
    return "[{\"backend\": {\"type\": \"udp\", \"local_port\": " + std::to_string(local) +
           ", \"peer_port\": " + std::to_string(peer) + "}}]";
  };
  const std::string ma = metrics_path(), mb = metrics_path();
  Child b = Child::spawn({LABYRINTH_BINARY, "run", "--metrics", mb, "--config",
                          config("lnic_echo", "mode=irq frames=2000 wait_ms=20000", udp(pb, pa))});
  Child a =
      Child::spawn({LABYRINTH_BINARY, "run", "--metrics", ma, "--config",
                    config("lnic_echo", "mode=irq kick=8 frames=2000 wait_ms=20000", udp(pa, pb))});
  auto ra = a.wait(std::chrono::seconds(90));
  auto rb = b.wait(std::chrono::seconds(30));
  EXPECT_EQ(ra.status, 0) << ra.out << ra.err;
  EXPECT_EQ(rb.status, 0) << rb.out << rb.err;
  const auto ja = read_json(ma), jb = read_json(mb);
  EXPECT_GE(num(ja.at("lnics").as_array()[0].at("rx_frames")), 2000u);
  EXPECT_GE(num(jb.at("lnics").as_array()[0].at("tx_frames")), 2000u);
  expect_clean_run(ja, ra.out);
  expect_clean_run(jb, rb.out);
}

TEST_F(LnicVmTest, LatencyCommandWritesTableJsonAndPlot) {
  const std::string js = (dir_ / "lat.json").string(), svg = (dir_ / "lat.svg").string();
  const std::string serial = (dir_ / "lat-guest.log").string();
  // --ready-timeout: the default (10 s) is the product's; this test is not about how fast
  // the guest gets ready, and a freestanding guest under the nested PVM KVM (its CPL 0
  // emulated) on a loaded 2-core host took longer than 10 s to enable the lnic.
  auto r = Child::run({LABYRINTH_BINARY, "latency", "--seconds", "2", "--ready-timeout", "50",
                       "--json", js, "--plot", svg, "--serial-out", serial, "--config",
                       config("lnic_latency", "seconds=3600",
                              R"([{"backend": {"type": "pktgen", "rate_pps": 1000}}])")},
                      std::chrono::seconds(60));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  for (const char* span : {"alloc", "host_rx", "guest", "floor"}) {
    EXPECT_NE(r.out.find(span), std::string::npos) << r.out;
  }
  const auto j = read_json(js);
  // KVM's TSC catch-up mode (QEMU TCG hosts) moves the guest TSC during the run: the
  // report states it; a floor (~100 us) is placed right only when the offset is stable.
  const double drift_us = j.at("tsc_offset_drift_us").as_double();
  const bool tsc_stable = j.at("tsc_offset_stable").as_bool();
  EXPECT_NE(std::string(j.at("notes").at("guest TSC offset drift").as_string()).find("us"),
            std::string::npos);
  const auto& floor = j.at("metrics").at("lnics").as_array()[0].at("floor").as_object();
  // A floor is sent only once the guest answered the previous one: on a host slower
  // than the floor rate (the TCG test VM beside another busy VM: 65 of 1,010 ticks
  // sent) the span is thin, and the report must say so.
  const bool floor_thin = j.at("notes").as_object().contains("floor samples");
  EXPECT_EQ(floor_thin,
            num(floor.at("missed")) * 2 > num(floor.at("sent")) + num(floor.at("missed")))
      << json::serialize(floor);
  // A floor the guest answered is a sample, or "early" when its stamp maps to before the
  // send: the guest TSC offset moved under it (KVM's catch-up under TCG). Each is an
  // interrupt delivered and answered, so the floor is measured on every host; only how
  // far its figures can be trusted depends on the offset, and the report must say so.
  const uint64_t floor_early = num(floor.at("early"));
  if (!tsc_stable) {
    EXPECT_NE(
        std::string(j.at("notes").at("guest TSC offset drift").as_string()).find("offset unstable"),
        std::string::npos);
  }
  for (const char* span : {"alloc", "host_rx", "guest", "floor"}) {
    const auto& s = j.at("spans").at(span).as_object();
    const bool is_floor = std::string(span) == "floor";
    EXPECT_GT(num(s.at("count")) + (is_floor ? floor_early : 0), floor_thin && is_floor ? 0u : 100u)
        << span << " (TSC offset drift " << drift_us << " us, stable " << tsc_stable << ", "
        << json::serialize(floor) << ")";
    if (is_floor && tsc_stable) {
      EXPECT_GT(num(s.at("count")), floor_thin ? 0u : 100u) << json::serialize(floor);
    }
    // The table on stdout shows the span the JSON holds: its row's count, p50 (as
    // printed: 3 decimals below 10 us, 1 below 1 ms, none above) and drops.
    std::smatch row;
    ASSERT_TRUE(std::regex_search(
        r.out, row,
        std::regex("\\n" + std::string(span) +
                   " +([0-9]+) +[0-9.]+ +([0-9.]+) +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ "
                   "+([0-9]+)\\n")))
        << span << "\n"
        << r.out;
    EXPECT_EQ(std::stoull(row[1].str()), num(s.at("count"))) << span;
    const double p50 = s.at("p50").as_double();
    EXPECT_NEAR(std::stod(row[2].str()), p50,
                p50 < 10     ? 0.00051
                : p50 < 1000 ? 0.051
                             : 0.51)
        << span;
    EXPECT_EQ(std::stoull(row[3].str()), num(s.at("drops"))) << span;
  }
  // Every floor sent is accounted for: a sample, an early stamp (which makes the
  // offset unstable above when there are more than 1%), or the one unanswered at stop.
  const uint64_t floors = num(j.at("spans").at("floor").at("count"));
  EXPECT_GE(num(floor.at("sent")), floors + num(floor.at("early"))) << json::serialize(floor);
  EXPECT_LE(num(floor.at("sent")), floors + num(floor.at("early")) + 1) << json::serialize(floor);
  EXPECT_EQ(num(j.at("spans").at("floor").at("drops")),
            num(floor.at("missed")) + num(floor.at("early")));
  // The guest span is right only with the real TSC offset (standard KVM starts a VM's
  // TSC near 0): positive, plausible (the guest handler runs after the frame was
  // allocated for, within a second), and at most 1% of stamps earlier than their frame.
  const auto& guest = j.at("spans").at("guest").as_object();
  const auto& alloc = j.at("spans").at("alloc").as_object();
  const auto& nic = j.at("metrics").at("lnics").as_array()[0].as_object();
  // One alloc sample per allocation on the RX path: every frame delivered or dropped
  // for want of a page.
  EXPECT_EQ(num(alloc.at("count")),
            num(nic.at("rx_frames")) + num(nic.at("rx_drops").at("no_page")));
  const uint64_t early = num(nic.at("guest_samples_early"));
  const uint64_t samples = num(guest.at("count"));
  EXPECT_LE(early * 100, samples + early) << early << " early of " << samples + early;
  EXPECT_GT(guest.at("p50").as_double(), 0.0);
  EXPECT_GE(guest.at("p50").as_double(), alloc.at("p50").as_double());
  EXPECT_LT(guest.at("p99").as_double(), 1e6);  // us
  for (const auto& [kind, n] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(n), 0u) << kind << "\n" << r.out;
  }
  EXPECT_NE(j.at("notes").at("host").as_string().size(), 0u);
  // lnic_latency halts between interrupts: the idle-mode note must say so from KVM's own
  // count of vCPU 0's HLTs, not from the kernel's file name (a kernel without
  // KVM_GET_STATS_FD would say "not observed" here: every supported host has it).
  EXPECT_EQ(std::string(j.at("notes").at("guest idle mode").as_string())
                .rfind("halted: vCPU 0 executed HLT ", 0),
            0u)
      << r.out;
  ASSERT_TRUE(j.contains("vcpu0_halt_exits")) << r.out;
  EXPECT_GT(num(j.at("vcpu0_halt_exits")), 0u);
  // The alloc span says what it is net of, and counts the samples that calibration zeroed.
  EXPECT_NE(std::string(j.at("spans").at("alloc").at("description").as_string())
                .find("net of the rdtsc pair's own cost"),
            std::string::npos);
  EXPECT_LE(num(nic.at("alloc_samples_net_zero")), num(alloc.at("count")));
  // The measured phases start once the guest answered a first interrupt.
  EXPECT_NE(
      std::string(j.at("notes").at("warm-up").as_string()).find(" ms from the guest enabling"),
      std::string::npos);
  EXPECT_NE(std::string(j.at("notes").at("guest TSC offset").as_string()).find("ticks"),
            std::string::npos);
  std::ifstream guest_log(serial);
  const std::string glog((std::istreambuf_iterator<char>(guest_log)),
                         std::istreambuf_iterator<char>());
  EXPECT_EQ(glog.find("DEVICE BUG"), std::string::npos) << glog;
  std::ifstream plot(svg);
  std::string text((std::istreambuf_iterator<char>(plot)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("polyline"), std::string::npos);
}

// stdout on a character device that is not a pty (/dev/null here; a serial console in
// the test VM): stdio's first use asks isatty(), an ioctl the event loop's seccomp filter
// forbids; the buffering is decided before the filters (this exited 6).
TEST_F(LnicVmTest, LatencyReportToDevNullIsNotASeccompViolation) {
  const std::string cfg = config("lnic_latency", "seconds=3600",
                                 R"([{"backend": {"type": "pktgen", "rate_pps": 1000}}])");
  auto r =
      Child::run({"/bin/sh", "-c",
                  std::string("exec ") + LABYRINTH_BINARY +
                      " latency --seconds 1 --ready-timeout 50 --config " + cfg + " --serial-out " +
                      (dir_ / "devnull-guest.log").string() + " >/dev/null"},
                 std::chrono::seconds(60));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("seccomp"), std::string::npos) << r.err;
}

TEST_F(LnicVmTest, LatencyWithoutAnLnicIsAUsageError) {
  const std::string path = (dir_ / "nolnic.json").string();
  std::ofstream(path) << "{\"boot-source\": {\"kernel_image_path\": \"" << LABYRINTH_GUEST_DIR
                      << "/hello.elf\"}}";
  auto r = Child::run({LABYRINTH_BINARY, "latency", "--seconds", "1", "--config", path});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("labyrinth.lnics"), std::string::npos) << r.err;
}

TEST_F(LnicVmTest, BadLnicConfigNamesTheField) {
  struct Case {
    std::string lnics, field;
  } cases[] = {
      {R"([{"backend": {"type": "warp"}}])", "labyrinth.lnics[0].backend.type"},
      {R"([{"backend": {"type": "pktgen", "rate_pps": -5}}])",
       "labyrinth.lnics[0].backend.rate_pps"},
      {R"([{"backend": {"type": "pktgen", "frame_size": 9000}}])",
       "labyrinth.lnics[0].backend.frame_size"},
      {R"([{"guest_mac": "01:00:00:00:00:01", "backend": {"type": "loopback"}}])",
       "labyrinth.lnics[0].guest_mac"},
      {R"([{"backend": {"type": "udp", "local_port": 1}}])",
       "labyrinth.lnics[0].backend.peer_port"},
      {R"([{"backend": {"type": "tap"}}])", "labyrinth.lnics[0].backend.host_dev_name"},
      {R"([{"id": "a", "backend": {"type": "loopback"}}, {"id": "a", "backend": {"type": "loopback"}}])",
       "labyrinth.lnics[1].id"},
      {R"([{"backend": {"type": "loopback"}, "speed": 1}])", "labyrinth.lnics[0].speed"},
      {R"({"backend": 1})", "labyrinth.lnics"},
  };
  for (const Case& c : cases) {
    auto r = Child::run({LABYRINTH_BINARY, "run", "--config", config("hello", "", c.lnics)});
    EXPECT_EQ(r.status, 2) << c.lnics << "\n" << r.err;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << c.lnics << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one line
  }
}

TEST_F(LnicVmTest, UdpPortInUseIsAClearHostError) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  auto r = Child::run({LABYRINTH_BINARY, "run", "--config",
                       config("hello", "",
                              "[{\"backend\": {\"type\": \"udp\", \"local_port\": " +
                                  std::to_string(ntohs(a.sin_port)) + ", \"peer_port\": 9}}]")});
  close(s);
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_NE(r.err.find("UDP"), std::string::npos) << r.err;
}

TEST_F(LnicVmTest, SeveralLnicsEachWithItsOwnWindowMacAndInterrupt) {
  const std::string m = metrics_path();
  auto r = Child::run(
      {LABYRINTH_BINARY, "run", "--metrics", m, "--config",
       config(
           "lnic_sink", "mode=irq nic=1 frames=1000",
           R"([{"id": "a", "guest_mac": "02:00:00:00:00:0a", "backend": {"type": "pktgen", "rate_pps": 2000}},
                  {"id": "b", "guest_mac": "02:00:00:00:00:0b", "backend": {"type": "pktgen", "rate_pps": 2000, "pattern": 7}}])")},
      std::chrono::seconds(90));
  ASSERT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("mac 02:00:00:00:00:0b"), std::string::npos) << r.out;  // it drove lnic 1
  const auto j = read_json(m);
  const auto& nics = j.at("lnics").as_array();
  ASSERT_EQ(nics.size(), 2u);
  EXPECT_EQ(nics[0].at("id").as_string(), "a");
  EXPECT_EQ(num(nics[0].at("rx_frames")), 0u);  // never enabled: its pktgen never started
  EXPECT_GE(num(nics[1].at("rx_frames")), 1000u);
  EXPECT_GT(num(nics[1].at("irqs")), 0u);
  expect_exact_accounting(j);
  expect_clean_run(j, r.out);
}

// A real TAP device with a real guest: labyrinth runs inside a network namespace the
// test creates (and removes); lnic_echo sends back what arrives on the tap; a packet
// socket in the namespace sends frames in and reads the echoes.
TEST_F(LnicVmTest, EchoGuestOverARealTapDeviceInItsOwnNamespace) {
  ASSERT_EQ(access("/dev/net/tun", R_OK | W_OK), 0) << "/dev/net/tun is needed";
  ASSERT_EQ(std::system("command -v ip >/dev/null"), 0)
      << "iproute2 (ip) is needed (scripts/setup.sh)";
  const std::string ns = "lbvm-" + std::to_string(getpid());
  ASSERT_EQ(std::system(("ip netns add " + ns).c_str()), 0) << "cannot create a network namespace";
  const std::string cfg = config("lnic_echo", "mode=irq idle_ms=3000 wait_ms=20000",
                                 R"([{"backend": {"type": "tap", "host_dev_name": "lbtap0"}}])");
  Child vm = Child::spawn(
      {"/usr/bin/env", "ip", "netns", "exec", ns, LABYRINTH_BINARY, "run", "--config", cfg});
  // Wait for labyrinth to create the tap, bring it up (no addresses: raw frames only).
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = std::system(("ip -n " + ns + " link set lbtap0 up 2>/dev/null").c_str()) == 0;
    if (!up) usleep(20000);
  }
  // Frames sent before the guest has enabled its NIC are dropped (not_running).
  const bool ready = up && vm.wait_for_output("lnic0 up", std::chrono::seconds(30));
  int echoed = -1;
  if (ready) {
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(100);
      const int ps = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(0x88B5));
      sockaddr_ll addr{};
      addr.sll_family = AF_PACKET;
      addr.sll_protocol = htons(0x88B5);
      addr.sll_ifindex = static_cast<int>(if_nametoindex("lbtap0"));
      if (ps < 0 || bind(ps, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) _exit(101);
      // Send 20 numbered frames, 20 ms apart, then collect echoes for up to 5 s; the
      // tap also carries the kernel's own frames (IPv6 autoconf) and our outgoing
      // copies, so count distinct numbers of incoming 0x88B5 frames.
      bool seen[20] = {};
      int got = 0;
      auto drain = [&] {
        for (;;) {
          sockaddr_ll from{};
          socklen_t fl = sizeof from;
          uint8_t buf[2048];
          const ssize_t r =
              recvfrom(ps, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
          if (r < 0) return;
          if (r == 64 && from.sll_pkttype != PACKET_OUTGOING && buf[40] < 20 && !seen[buf[40]]) {
            seen[buf[40]] = true;
            ++got;
          }
        }
      };
      for (int n = 0; n < 20; ++n) {
        uint8_t frame[64] = {};
        std::memset(frame, 0xFF, 6);
        const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x42};
        std::memcpy(frame + 6, src, 6);
        frame[12] = 0x88;
        frame[13] = 0xB5;
        frame[40] = static_cast<uint8_t>(n);
        if (sendto(ps, frame, sizeof frame, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) !=
            64)
          _exit(102);
        usleep(20000);
        drain();
      }
      for (int t = 0; t < 250 && got < 20; ++t) {
        usleep(20000);
        drain();
      }
      _exit(got);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    echoed = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  auto r = vm.wait(std::chrono::seconds(60));
  (void)std::system(("ip netns del " + ns).c_str());
  ASSERT_TRUE(up) << "the tap never appeared\n" << r.out << r.err;
  ASSERT_TRUE(ready) << "the guest never enabled its NIC\n" << r.out << r.err;
  EXPECT_EQ(echoed, 20) << r.out << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
}

}  // namespace
}  // namespace labyrinth::devices::lnic
