// devices/virtio/net/tap.h — a TAP device by name, for virtio-net.
//
// Opens /dev/net/tun and attaches to the interface host_dev_name (IFF_TAP | IFF_NO_PI),
// creating it when it does not exist (a created interface goes away with the last fd,
// as with Firecracker's and QEMU's tap backends). No IFF_VNET_HDR: the device offers
// no offloads, so the virtio-net header is added and removed by the device itself.
// Bringing the interface up and addressing it is the user's (or the test's) business.
//
//   auto tap = open_tap("tap0");                     // non-blocking, close-on-exec
//   if (!tap) puts(tap.error().message().c_str());   // "cannot open or create ..."
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace labyrinth::devices::virtio {

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
  std::string detail;  // one line: what failed and why (errno text)
};

std::expected<TapFd, TapError> open_tap(std::string_view name);

}  // namespace labyrinth::devices::virtio
