// tests/vmm/net_peer.cc — the host end of the Linux guest's TCP test (linux_net_test.cc).
//
//   net_peer sink PORT BYTES     accept one connection, read until EOF; status 0 when
//                                exactly BYTES arrived, all zero (the guest sends /dev/zero)
//   net_peer source PORT BYTES   accept one connection, send BYTES, shut down the write
//                                side, wait for the peer to close
// Prints one line: bytes, seconds from accept to the end, Mbit/s. Gives up after 600 s.
//
//   net_peer blast PORT IFACE DSTMAC N [PIDFILE]
//                                the receive-rate source of tests/vmm/bench/nic_bench.sh:
//                                serves N connections one after the other; each sends a
//                                line "SIZE RATE SECONDS" and gets, on IFACE (AF_PACKET),
//                                SECONDS of SIZE-byte Ethernet frames to DSTMAC (EtherType
//                                0x88B5, local experimental; a 64-bit sequence number and a
//                                pattern) at RATE frames a second (0: as fast as sendto
//                                goes), then one line "sent F frames in T s" and EOF.
//                                Prints the same line for each. With PIDFILE (the VMM's
//                                PID, read at each request) the line adds the CPU time
//                                the VMM's threads took while the frames went out, from
//                                the scheduler (schedstat): ", vcpu V ns, vmm W ns" (V its
//                                threads named vcpu*: the guest; W the others: devices).
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int fail(const char* what) {
  (void)std::fprintf(stderr, "net_peer: %s: %s\n", what, std::strerror(errno));
  return 1;
}

// Listens on `port` (all addresses); -1 on failure (reported).
int listen_on(int port) {
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) {
    (void)fail("socket");
    return -1;
  }
  const int one = 1;
  (void)::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(ls, 1) != 0) {
    (void)fail("bind/listen");
    (void)::close(ls);
    return -1;
  }
  return ls;
}

bool parse_mac(const char* text, uint8_t (&mac)[6]) {
  unsigned v[6];
  char tail = 0;
  if (std::sscanf(text, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
      6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    if (v[i] > 0xff) return false;
    mac[i] = static_cast<uint8_t>(v[i]);
  }
  return true;
}

uint64_t now_ns() {
  timespec ts{};
  (void)::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// On-CPU nanoseconds of one process's threads (/proc/PID/task/*/schedstat, first field),
// split into those named vcpu* and the rest. ok is false when PIDFILE names no process.
struct CpuSplit {
  uint64_t vcpu = 0, other = 0;
  bool ok = false;
};

CpuSplit cpu_of(const char* pidfile) {
  CpuSplit r;
  if (pidfile == nullptr) return r;
  FILE* f = std::fopen(pidfile, "r");
  if (f == nullptr) return r;
  int pid = 0;
  const bool have = std::fscanf(f, "%d", &pid) == 1 && pid > 0;
  (void)std::fclose(f);
  if (!have) return r;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(tasks.c_str());
  if (d == nullptr) return r;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string t = tasks + "/" + e->d_name;
    char comm[32] = {};
    unsigned long long ns = 0;
    FILE* c = std::fopen((t + "/comm").c_str(), "r");
    if (c == nullptr) continue;
    const bool named = std::fgets(comm, sizeof comm, c) != nullptr;
    (void)std::fclose(c);
    FILE* st = std::fopen((t + "/schedstat").c_str(), "r");
    if (st == nullptr) continue;
    const bool timed = std::fscanf(st, "%llu", &ns) == 1;
    (void)std::fclose(st);
    if (!named || !timed) continue;
    (std::strncmp(comm, "vcpu", 4) == 0 ? r.vcpu : r.other) += ns;
    r.ok = true;
  }
  (void)::closedir(d);
  return r;
}

int blast(int port, const char* iface, const char* dst_text, int connections, const char* pidfile) {
  uint8_t dst[6];
  if (!parse_mac(dst_text, dst)) {
    (void)std::fprintf(stderr, "net_peer: blast: DSTMAC '%s' is not aa:bb:cc:dd:ee:ff\n", dst_text);
    return 2;
  }
  const unsigned ifindex = ::if_nametoindex(iface);
  if (ifindex == 0) return fail(iface);
  const int raw = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (raw < 0) return fail("AF_PACKET socket");
  ifreq ifr{};
  (void)std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", iface);
  if (::ioctl(raw, SIOCGIFHWADDR, &ifr) != 0) return fail("SIOCGIFHWADDR");
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, dst, 6);
  const int ls = listen_on(port);
  if (ls < 0) return 1;
  (void)std::printf("net_peer: blast listening on %d, frames on %s to %s\n", port, iface, dst_text);
  (void)std::fflush(stdout);
  uint64_t seq = 0;
  for (int c = 0; c < connections; ++c) {
    pollfd p{ls, POLLIN, 0};
    if (::poll(&p, 1, 600'000) != 1) return fail("no connection within 600 s");
    const int s = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (s < 0) return fail("accept");
    char line[128] = {};
    size_t got = 0;
    while (got + 1 < sizeof line && std::memchr(line, '\n', got) == nullptr) {
      const ssize_t n = ::read(s, line + got, sizeof line - 1 - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    unsigned size = 0, rate = 0;
    double seconds = 0;
    if (std::sscanf(line, "%u %u %lf", &size, &rate, &seconds) != 3 || size < 60 || size > 1514 ||
        seconds <= 0 || seconds > 600) {
      (void)std::fprintf(stderr,
                         "net_peer: blast: bad request '%s' (want SIZE RATE SECONDS, "
                         "60 <= SIZE <= 1514)\n",
                         line);
      (void)::close(s);
      return 2;
    }
    std::vector<uint8_t> frame(size, 0);
    std::memcpy(frame.data(), dst, 6);
    std::memcpy(frame.data() + 6, ifr.ifr_hwaddr.sa_data, 6);
    frame[12] = 0x88;
    frame[13] = 0xB5;
    for (size_t i = 22; i < frame.size(); ++i) frame[i] = static_cast<uint8_t>(i * 7 % 251);
    const CpuSplit cpu0 = cpu_of(pidfile);
    const uint64_t t0 = now_ns();
    const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
    const uint64_t gap = rate == 0 ? 0 : 1'000'000'000u / rate;
    uint64_t sent = 0, failed = 0, next = t0;
    for (uint64_t t = t0; t < end; t = now_ns()) {
      if (gap != 0 && t < next) {
        const uint64_t wait = next - t;
        timespec ts{static_cast<time_t>(wait / 1'000'000'000u),
                    static_cast<long>(wait % 1'000'000'000u)};
        (void)::nanosleep(&ts, nullptr);
        continue;
      }
      next += gap;
      std::memcpy(frame.data() + 14, &seq, sizeof seq);
      if (::sendto(raw, frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to) == static_cast<ssize_t>(frame.size())) {
        ++sent;
        ++seq;
      } else {
        ++failed;
      }
    }
    const double secs = static_cast<double>(now_ns() - t0) / 1e9;
    const CpuSplit cpu1 = cpu_of(pidfile);
    char cpu[96] = {};
    if (cpu0.ok && cpu1.ok) {
      (void)std::snprintf(cpu, sizeof cpu, ", vcpu %llu ns, vmm %llu ns",
                          static_cast<unsigned long long>(cpu1.vcpu - cpu0.vcpu),
                          static_cast<unsigned long long>(cpu1.other - cpu0.other));
    }
    char result[256];
    const int len = std::snprintf(result, sizeof result,
                                  "sent %llu frames of %u bytes in %.3f s (%.0f/s, asked %u/s), "
                                  "%llu sendto failures%s\n",
                                  static_cast<unsigned long long>(sent), size, secs,
                                  static_cast<double>(sent) / secs, rate,
                                  static_cast<unsigned long long>(failed), cpu);
    (void)std::printf("net_peer: blast %s", result);
    (void)std::fflush(stdout);
    (void)!::write(s, result, static_cast<size_t>(len));
    (void)::close(s);
  }
  (void)::close(ls);
  (void)::close(raw);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if ((argc == 6 || argc == 7) && std::string(argv[1]) == "blast") {
    return blast(std::atoi(argv[2]), argv[3], argv[4], std::atoi(argv[5]),
                 argc == 7 ? argv[6] : nullptr);
  }
  if (argc != 4) {
    (void)std::fprintf(
        stderr, "usage: net_peer sink|source PORT BYTES | blast PORT IFACE DSTMAC N [PIDFILE]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int port = std::atoi(argv[2]);
  const uint64_t bytes = std::strtoull(argv[3], nullptr, 10);
  const int ls = listen_on(port);
  if (ls < 0) return 1;
  (void)std::printf("net_peer: %s listening on %d\n", mode.c_str(), port);
  (void)std::fflush(stdout);
  pollfd p{ls, POLLIN, 0};
  if (::poll(&p, 1, 600'000) != 1) return fail("no connection within 600 s");
  const int s = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
  if (s < 0) return fail("accept");
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<char> buf(1 << 16);
  uint64_t moved = 0, nonzero = 0;
  if (mode == "sink") {
    for (;;) {
      const ssize_t n = ::read(s, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("read");
      if (n == 0) break;
      for (ssize_t i = 0; i < n; ++i) nonzero += buf[static_cast<size_t>(i)] != 0;
      moved += static_cast<uint64_t>(n);
    }
  } else {
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 7 % 251);
    while (moved < bytes) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - moved));
      const ssize_t n = ::write(s, buf.data(), want);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("write");
      moved += static_cast<uint64_t>(n);
    }
    (void)::shutdown(s, SHUT_WR);
    while (::read(s, buf.data(), buf.size()) > 0) {
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (void)std::printf("net_peer: %s %llu bytes in %.3f s (%.1f Mbit/s), nonzero %llu\n", mode.c_str(),
                    static_cast<unsigned long long>(moved), secs,
                    secs > 0 ? static_cast<double>(moved) * 8 / secs / 1e6 : 0.0,
                    static_cast<unsigned long long>(nonzero));
  (void)::close(s);
  (void)::close(ls);
  return moved == bytes && nonzero == 0 ? 0 : 1;
}
