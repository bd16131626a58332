#include "devices/serial/serial_console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::devices {

// Blocks (in 100 ms polls) while the reader is slow rather than drop console output;
// a hard error stops output for good instead of failing on every byte after it.
void FdOutput::write(std::span<const uint8_t> bytes) {
  while (!bytes.empty() && !failed_) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n > 0) {
      bytes = bytes.subspan(static_cast<size_t>(n));
      written_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 100);
    } else {
      spdlog::warn("serial output: {}; dropping further output", std::strerror(errno));
      failed_ = true;
    }
  }
}

StdinReader::StdinReader(boost::asio::io_context& io, Uart16550& uart, int fd)
    : uart_(uart), fd_(fd), stream_(io), retry_(io) {}

StdinReader::~StdinReader() {
  boost::system::error_code ec;
  (void)stream_.close(ec);  // closes our dup only
}

// Reads stdin only when it is a stream this process may read: a regular file or
// /dev/null cannot be polled, and reading a terminal from a background process group
// would stop the VMM with SIGTTIN. Works on a dup so closing ours leaves stdin open.
bool StdinReader::start() {
  struct stat st = {};
  if (::fstat(fd_, &st) != 0 ||
      !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode))) {
    spdlog::debug("serial input: stdin is not a stream; not reading it");
    return false;
  }
  if (::isatty(fd_) && ::tcgetpgrp(fd_) != ::getpgrp()) {
    spdlog::debug("serial input: terminal belongs to another process group; not reading it");
    return false;
  }
  const int dup = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return false;
  boost::system::error_code ec;
  (void)stream_.assign(dup, ec);  // registers with epoll; /dev/null and the like fail here
  if (ec) {
    ::close(dup);
    spdlog::debug("serial input: cannot poll stdin ({}); not reading it", ec.message());
    return false;
  }
  wait();
  return true;
}

void StdinReader::wait() {
  stream_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [this](const boost::system::error_code& ec) {
                       if (!ec) on_readable();
                     });
}

// Back-pressure: never read more than the UART's FIFO can take; while it is full, look
// again later instead of reading and dropping what the user typed.
void StdinReader::on_readable() {
  const size_t space = uart_.rx_space();
  if (space == 0) {
    retry_.expires_after(std::chrono::milliseconds(10));
    retry_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) on_readable();
    });
    return;
  }
  uint8_t buf[256];
  // Readable per poll, so read(2) returns without blocking (we never set O_NONBLOCK:
  // stdin's file description may be shared with stdout).
  const ssize_t n = ::read(stream_.native_handle(), buf, std::min(space, sizeof(buf)));
  if (n > 0) {
    uart_.enqueue_input(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    wait();
  } else if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
    wait();
  } else {
    spdlog::debug("serial input: end of stdin");
  }
}

}  // namespace labyrinth::devices
