// virtio-net end to end with a hostile guest: build/labyrinth runs guest/programs/
// virtio_hostile.elf (a freestanding driver that writes malformed queues, chains and
// registers) on real KVM with a TAP backend; every bad input is counted by reason, the
// device keeps returning well-formed chains, every well-formed frame leaves through the
// TAP (read back off it), the VMM exits cleanly. The TAP lives in a network namespace of
// the test's own, which goes away with it. Needs /dev/kvm, CAP_SYS_ADMIN (the namespace)
// and CAP_NET_ADMIN (the TAP).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>

#include "guest/programs/virtio_hostile_frame.h"
#include "tests/vmm/subprocess.h"
#include "vmm/fd.h"

namespace labyrinth::devices::virtio {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using labyrinth::testing::Child;
using labyrinth::vmm::Fd;
using namespace std::chrono_literals;

uint64_t num(const json::value& v) {
  return v.to_number<uint64_t>();
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// Moves the calling thread (and the processes it starts) into a new network namespace,
// and back when destroyed; the namespace and the TAP in it go away with the last user.
class OwnNetNamespace {
 public:
  OwnNetNamespace() : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
    if (!home_) {
      error_ = errno_text("open /proc/thread-self/ns/net");
    } else if (::unshare(CLONE_NEWNET) != 0) {
      error_ = errno_text("unshare(CLONE_NEWNET)");
    }
  }
  ~OwnNetNamespace() {
    if (error_.empty()) {
      EXPECT_EQ(::setns(home_.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    }
  }
  OwnNetNamespace(const OwnNetNamespace&) = delete;
  OwnNetNamespace& operator=(const OwnNetNamespace&) = delete;
  const std::string& error() const { return error_; }

 private:
  Fd home_;
  std::string error_;
};

// In the current namespace: a persistent TAP named name, up, without IPv6 (whose router
// and listener solicitations would go to the guest), for labyrinth to attach to by name.
// Returns what failed, or "".
std::string make_tap(const std::string& name) {
  if (std::ofstream v6("/proc/sys/net/ipv6/conf/default/disable_ipv6"); v6) v6 << "1\n";
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  Fd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) return errno_text("open /dev/net/tun");
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) return errno_text("TUNSETIFF");
  if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0) return errno_text("TUNSETPERSIST");
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return errno_text("socket(AF_INET)");
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return errno_text("SIOCGIFFLAGS");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return errno_text("SIOCSIFFLAGS");
  return "";
}

// What a packet socket on the TAP saw come in from its file side (labyrinth's writes).
struct TapFrames {
  uint64_t expected = 0;  // exactly virtio_hostile::kTxFrame
  uint64_t other = 0;     // anything else
  std::string first_other;
};

// Reads frames until `want` copies of the guest's frame have arrived or `limit` passed,
// then whatever else is already queued.
TapFrames read_tap(int packet_socket, uint64_t want, std::chrono::milliseconds limit) {
  TapFrames seen;
  const auto end = std::chrono::steady_clock::now() + limit;
  std::array<uint8_t, 2048> buf{};
  for (;;) {
    sockaddr_ll from{};
    socklen_t len = sizeof from;
    const ssize_t n = ::recvfrom(packet_socket, buf.data(), buf.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (seen.expected >= want || std::chrono::steady_clock::now() >= end) break;
      pollfd p{packet_socket, POLLIN, 0};
      (void)::poll(&p, 1, 100);
      continue;
    }
    if (from.sll_pkttype == PACKET_OUTGOING) continue;  // the host's own, towards the guest
    if (static_cast<size_t>(n) == sizeof virtio_hostile::kTxFrame &&
        std::memcmp(buf.data(), virtio_hostile::kTxFrame, sizeof virtio_hostile::kTxFrame) == 0) {
      ++seen.expected;
    } else if (seen.other++ == 0) {
      std::ostringstream hex;
      hex << n << " bytes:" << std::hex;
      for (ssize_t i = 0; i < std::min<ssize_t>(n, 32); ++i) hex << ' ' << int{buf[i]};
      seen.first_other = hex.str();
    }
  }
  return seen;
}

TEST(VirtioHostileGuest, EveryMalformedInputIsCountedAndTheDeviceKeepsWorking) {
  ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0) << "needs /dev/kvm";
  const fs::path dir =
      fs::temp_directory_path() / ("labyrinth-virtio-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cfg = (dir / "vm.json").string(), metrics = (dir / "m.json").string();
  const std::string tap = "lvh" + std::to_string(::getpid() % 100000);
  OwnNetNamespace ns;
  ASSERT_EQ(ns.error(), "");
  ASSERT_EQ(make_tap(tap), "");
  Fd frames(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  ASSERT_TRUE(frames) << std::strerror(errno);
  sockaddr_ll on_tap{};
  on_tap.sll_family = AF_PACKET;
  on_tap.sll_protocol = htons(ETH_P_ALL);
  on_tap.sll_ifindex = static_cast<int>(::if_nametoindex(tap.c_str()));
  ASSERT_NE(on_tap.sll_ifindex, 0) << std::strerror(errno);
  ASSERT_EQ(::bind(frames.get(), reinterpret_cast<sockaddr*>(&on_tap), sizeof on_tap), 0)
      << std::strerror(errno);
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_GUEST_DIR
                     << R"(/virtio_hostile.elf"}, "machine-config": {"vcpu_count": 1,)"
                     << R"( "mem_size_mib": 128}, "serial": {"input": "none"},)"
                     << R"( "network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")" << tap
                     << R"("}]})";
  auto r = Child::run({LABYRINTH_BINARY, "run", "--config", cfg, "--metrics", metrics}, 300s);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("virtio_hostile: checks="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed=0"), std::string::npos) << r.out;

  std::ifstream in(metrics);
  std::stringstream text;
  text << in.rdbuf();
  const json::object m = json::parse(text.str()).at("virtio_net").at(0).as_object();
  const json::object& why = m.at("malformed_by_reason").as_object();
  EXPECT_EQ(num(why.at("head index out of range")), 1u);
  EXPECT_EQ(num(why.at("chain longer than the queue (a loop)")), 2u);
  EXPECT_EQ(num(why.at("zero-length buffer")), 1u);
  EXPECT_EQ(num(why.at("buffer outside guest RAM")), 5u) << "huge, LAPIC, 2^48, wrap, RAM end";
  EXPECT_EQ(num(why.at("next index out of range")), 1u);
  EXPECT_EQ(num(why.at("indirect descriptor (not negotiated)")), 1u);
  EXPECT_EQ(num(why.at("readable buffer after a writable one")), 1u);
  // avail.idx far ahead stops the device (DEVICE_NEEDS_RESET, which the guest waits
  // for): counted once however many kicks or passes see it, until the guest's reset.
  EXPECT_EQ(num(why.at("avail.idx is more than a queue ahead")), 1u);
  EXPECT_EQ(num(m.at("needs_reset")), 1u);
  EXPECT_EQ(num(m.at("tx_drops").at("malformed")), 1u) << "shorter than the header";
  // 16 well-formed frames, each written to the TAP whole and read back off it; nothing
  // else came out (the malformed chains were dropped, not sent).
  EXPECT_EQ(num(m.at("tx_frames")), 16u);
  EXPECT_EQ(num(m.at("tx_bytes")), 16u * virtio_hostile::kTxFrameLen);
  EXPECT_EQ(num(m.at("tx_drops").at("backend")), 0u);
  const TapFrames seen = read_tap(frames.get(), 16, 30s);
  EXPECT_EQ(seen.expected, 16u);
  EXPECT_EQ(seen.other, 0u) << "first: " << seen.first_other;
  const json::object& t = m.at("transport").as_object();
  EXPECT_EQ(num(t.at("queues_rejected")), 6u);
  EXPECT_EQ(num(t.at("features_rejected")), 1u);
  EXPECT_EQ(num(t.at("bad_register_access")), 5u);
  EXPECT_EQ(num(t.at("activations")), 2u) << "the first start, and the one after the reset";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace labyrinth::devices::virtio
