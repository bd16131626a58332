#include "devices/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace labyrinth::devices {

TapFd& TapFd::operator=(TapFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) (void)::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    name_ = std::move(o.name_);
  }
  return *this;
}

TapFd::~TapFd() {
  if (fd_ >= 0) (void)::close(fd_);
}

std::expected<TapFd, TapError> open_tap(std::string_view name) {
  const std::string quoted = "\"" + std::string(name) + "\"";
  // Checked here, not left to the kernel: ifr_name below is a fixed IFNAMSIZ array that
  // must keep its terminating NUL.
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return std::unexpected(TapError{
        TapError::Kind::bad_name,
        quoted + ": an interface name has 1 to " + std::to_string(IFNAMSIZ - 1) + " characters"});
  }
  // Non-blocking: both NICs read the fd from the event loop, which must never wait.
  const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return std::unexpected(
        TapError{TapError::Kind::open_failed,
                 "cannot open /dev/net/tun for " + quoted + ": " + std::strerror(errno)});
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    const int err = errno;
    (void)::close(fd);
    return std::unexpected(
        TapError{TapError::Kind::open_failed,
                 "cannot open or create TAP device " + quoted + ": " + std::strerror(err)});
  }
  // The kernel's spelling of the name (it may have completed a pattern such as "tap%d").
  return TapFd(fd, ifr.ifr_name);
}

}  // namespace labyrinth::devices
