// tests/vmm/net_peer.cc — the host end of the Linux guest's TCP test (linux_net_test.cc).
//
//   net_peer sink PORT BYTES     accept one connection, read until EOF; status 0 when
//                                exactly BYTES arrived, all zero (the guest sends /dev/zero)
//   net_peer source PORT BYTES   accept one connection, send BYTES, shut down the write
//                                side, wait for the peer to close
// Prints one line: bytes, seconds from accept to the end, Mbit/s. Gives up after 600 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    (void)std::fprintf(stderr, "usage: net_peer sink|source PORT BYTES\n");
    return 2;
  }
  const std::string mode = argv[1];
  const int port = std::atoi(argv[2]);
  const uint64_t bytes = std::strtoull(argv[3], nullptr, 10);
  const int ls = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ls < 0) return fail("socket");
  const int one = 1;
  (void)::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return fail("bind");
  if (::listen(ls, 1) != 0) return fail("listen");
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
