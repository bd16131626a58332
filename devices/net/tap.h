// devices/net/tap.h — a TAP device by name: the one opener both NICs use.
//
// Opens /dev/net/tun and attaches to the interface host_dev_name (IFF_TAP | IFF_NO_PI),
// creating it when it does not exist (a created interface goes away with the last fd,
// as with Firecracker's and QEMU's tap backends). No IFF_VNET_HDR: neither NIC offers
// offloads, so a frame read or written is a bare Ethernet frame (virtio-net adds and
// removes its header itself). Bringing the interface up and addressing it is the user's
// (or the test's) business. Users: virtio-net (devices/virtio/net/), the lnic's tap
// backend (devices/lnic/backend/tap.h) and the configuration's pre-flight check.
//
//   auto tap = open_tap("tap0");                     // non-blocking, close-on-exec
//   if (!tap) puts(tap.error().detail.c_str());      // "cannot open or create ..."
//   stream_descriptor sd(io, tap->release());        // or hand the TapFd on
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace labyrinth::devices {

// Owns a TAP fd (closed on destruction) and the interface name the kernel attached it to.
class TapFd {
 public:
  TapFd() = default;
  TapFd(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  TapFd(TapFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)), name_(std::move(o.name_)) {}
  TapFd& operator=(TapFd&& o) noexcept;
  TapFd(const TapFd&) = delete;
  TapFd& operator=(const TapFd&) = delete;
  ~TapFd();
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  const std::string& name() const { return name_; }

 private:
  int fd_ = -1;
  std::string name_;
};

struct TapError {
  enum class Kind : uint8_t {
    bad_name,     // empty, or too long for an interface name (IFNAMSIZ)
    open_failed,  // /dev/net/tun could not be opened, or TUNSETIFF failed
  };
  Kind kind = Kind::open_failed;
  std::string detail;  // one line: what failed and why (errno text)
};

std::expected<TapFd, TapError> open_tap(std::string_view name);

}  // namespace labyrinth::devices
