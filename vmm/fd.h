// vmm/fd.h — a move-only owner of a file descriptor.
//
//   Fd kvm{::open("/dev/kvm", O_RDWR | O_CLOEXEC)};
//   if (!kvm) ...;            // invalid (-1) when open failed
//   ioctl(kvm.get(), ...);    // closed when `kvm` goes out of scope
#pragma once

#include <unistd.h>

#include <utility>

namespace labyrinth::vmm {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);  // close errors are not actionable here
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

}  // namespace labyrinth::vmm
