// lnic backends: pktgen schedule and frame format, UDP between two endpoints on
// loopback, and a real TAP device inside a network namespace the test creates and
// removes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "allocator/measure/tsc.h"
#include "devices/lnic/backend/pktgen.h"
#include "devices/lnic/backend/tap.h"
#include "devices/lnic/backend/udp.h"
#include "guest/abi/lnic.h"

namespace labyrinth::devices::lnic {
namespace {

struct Collect final : FrameSink {
  std::vector<std::vector<std::byte>> frames;
  std::vector<uint64_t> ready;
  int flushes = 0;
  void receive(std::span<const std::byte> f, uint64_t t) override {
    frames.emplace_back(f.begin(), f.end());
    ready.push_back(t);
  }
  void flush() override { ++flushes; }
};

void run_for(boost::asio::io_context& io, std::chrono::milliseconds ms) {
  io.restart();
  io.run_for(ms);
}

TEST(PktgenBackend, GeneratesScheduledFramesWithSequenceAndPattern) {
  boost::asio::io_context io;
  PktgenConfig cfg;
  cfg.rate_pps = 20'000;
  cfg.frame_size = 128;
  cfg.burst = 4;
  cfg.count = 2000;
  cfg.pattern = 0x30;
  PktgenBackend gen(io, cfg);
  Collect sink;
  gen.start(sink);
  run_for(io, std::chrono::milliseconds(400));  // 2000 frames at 20 kpps = 100 ms
  ASSERT_TRUE(gen.finished());
  ASSERT_EQ(sink.frames.size(), 2000u);
  EXPECT_EQ(gen.stats().generated + gen.stats().overrun, 2000u);
  EXPECT_EQ(sink.flushes, 500);  // one per burst
  const auto& clk = measure::TscClock::instance();
  for (size_t i = 0; i < sink.frames.size(); ++i) {
    const auto& f = sink.frames[i];
    ASSERT_EQ(f.size(), 128u);
    lnic_pktgen_header h;
    std::memcpy(&h, f.data(), sizeof h);
    ASSERT_EQ(h.seq, i);
    ASSERT_EQ(h.magic, LNIC_PKTGEN_MAGIC);
    ASSERT_EQ(static_cast<uint8_t>(f[12]), 0x88);  // ethertype on the wire
    ASSERT_EQ(static_cast<uint8_t>(f[13]), 0xB5);
    ASSERT_EQ(h.t_sched, sink.ready[i]);
    for (size_t j = sizeof h; j < f.size(); ++j) {
      ASSERT_EQ(static_cast<uint8_t>(f[j]), static_cast<uint8_t>(0x30 + (j - sizeof h)));
    }
    if (i % 4 != 0) {
      ASSERT_EQ(sink.ready[i], sink.ready[i - 1]);  // a burst shares its time
    }
  }
  // Bursts are 4 / 20 kpps = 200 us apart.
  const double gap_ns = clk.to_ns(sink.ready[4] - sink.ready[0]);
  EXPECT_NEAR(gap_ns, 200'000, 2'000);
}

TEST(PktgenBackend, StopsAfterItsDuration) {
  boost::asio::io_context io;
  PktgenConfig cfg;
  cfg.rate_pps = 1000;
  cfg.duration_s = 0.05;
  PktgenBackend gen(io, cfg);
  Collect sink;
  gen.start(sink);
  run_for(io, std::chrono::milliseconds(300));
  EXPECT_TRUE(gen.finished());
  EXPECT_NEAR(static_cast<double>(sink.frames.size()), 50.0, 3.0);
}

TEST(UdpBackend, TwoEndpointsOnLoopbackExchangeFrames) {
  boost::asio::io_context io;
  auto a = UdpBackend::create(io, UdpConfig{0, 0});
  ASSERT_TRUE(a);
  auto b = UdpBackend::create(io, UdpConfig{0, (*a)->local_port()});
  ASSERT_TRUE(b);
  // Point a at b now that b's port is known: recreate a with the peer set.
  const uint16_t a_port = (*a)->local_port();
  a->reset();
  auto a2 = UdpBackend::create(io, UdpConfig{a_port, (*b)->local_port()});
  ASSERT_TRUE(a2);
  Collect at_a, at_b;
  (*a2)->start(at_a);
  (*b)->start(at_b);
  const std::vector<std::byte> hello(60, std::byte{0x42});
  ASSERT_TRUE((*a2)->transmit(hello));
  ASSERT_TRUE((*b)->transmit(std::vector<std::byte>(70, std::byte{0x43})));
  run_for(io, std::chrono::milliseconds(100));
  ASSERT_EQ(at_b.frames.size(), 1u);
  EXPECT_EQ(at_b.frames[0], hello);
  ASSERT_EQ(at_a.frames.size(), 1u);
  EXPECT_EQ(at_a.frames[0].size(), 70u);
}

TEST(UdpBackend, PortInUseIsAClearError) {
  boost::asio::io_context io;
  auto a = UdpBackend::create(io, UdpConfig{0, 1});
  ASSERT_TRUE(a);
  auto b = UdpBackend::create(io, UdpConfig{(*a)->local_port(), 1});
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error(), BackendError::socket_failed);
}

// Runs body() in a child process inside a network namespace created for this test
// (`ip netns add`), removed afterwards. Returns the child's exit status.
int in_test_netns(const std::function<int()>& body) {
  const std::string ns = "labyrinth-test-" + std::to_string(getpid());
  if (std::system(("ip netns add " + ns + " 2>/dev/null").c_str()) != 0) return 200;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(201);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  (void)std::system(("ip netns del " + ns).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 202;
}

TEST(TapBackend, FramesCrossARealTapDeviceInItsOwnNamespace) {
  ASSERT_EQ(access("/dev/net/tun", R_OK | W_OK), 0) << "/dev/net/tun is needed";
  ASSERT_EQ(std::system("command -v ip >/dev/null"), 0)
      << "iproute2 (ip) is needed (scripts/setup.sh)";
  const int rc = in_test_netns([] {
    boost::asio::io_context io;
    auto tap = TapBackend::create(io, TapConfig{"lbtap0"});
    if (!tap) return 10;
    if (std::system("ip link set lbtap0 up") != 0) return 11;
    Collect sink;
    (*tap)->start(sink);
    // The host side: a packet socket on the interface sends one frame in and reads ours.
    const int ps = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (ps < 0) return 12;
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(ETH_P_ALL);
    addr.sll_ifindex = static_cast<int>(if_nametoindex("lbtap0"));
    if (bind(ps, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 13;
    std::vector<uint8_t> in(64, 0);
    std::memset(in.data(), 0xFF, 6);  // broadcast
    const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x99};
    std::memcpy(in.data() + 6, src, 6);
    in[12] = 0x88;
    in[13] = 0xB5;
    in[20] = 0x77;
    if (sendto(ps, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 64)
      return 14;
    for (int i = 0; i < 50 && sink.frames.empty(); ++i) run_for(io, std::chrono::milliseconds(10));
    bool got_in = false;
    for (const auto& f : sink.frames) {
      if (f.size() == 64 && static_cast<uint8_t>(f[20]) == 0x77) got_in = true;
    }
    if (!got_in) return 15;
    // Transmit a frame through the tap; the packet socket sees it.
    std::vector<std::byte> out(64, std::byte{0});
    std::memset(out.data(), 0xFF, 6);
    out[12] = std::byte{0x88};
    out[13] = std::byte{0xB5};
    out[21] = std::byte{0x55};
    if (!(*tap)->transmit(out)) return 16;
    uint8_t buf[2048];
    for (int i = 0; i < 100; ++i) {
      const ssize_t n = recv(ps, buf, sizeof buf, 0);
      if (n == 64 && buf[21] == 0x55) return 0;
      usleep(2000);
    }
    return 17;
  });
  EXPECT_EQ(rc, 0) << "200 no network namespace, 10 tap create, 11 link up, 12-14 packet socket, "
                      "15 no frame in, "
                      "16 transmit failed, 17 no frame out";
}

}  // namespace
}  // namespace labyrinth::devices::lnic
