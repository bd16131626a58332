#include "vmm/kvm/irqfd.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

// Non-blocking so that trigger() can never stall the device event loop, even if the
// eventfd counter were to saturate.
std::expected<std::unique_ptr<Irqfd>, Error> Irqfd::create(Vm& vm, uint32_t gsi) {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    spdlog::error("eventfd: {}", std::strerror(errno));
    return std::unexpected(Error::eventfd_failed);
  }
  if (auto r = vm.register_irqfd(fd.get(), gsi); !r) return std::unexpected(r.error());
  return std::unique_ptr<Irqfd>(new Irqfd(vm, gsi, std::move(fd)));
}

Irqfd::~Irqfd() {
  if (auto r = vm_.unregister_irqfd(fd_.get(), gsi_); !r) {
    spdlog::warn("irqfd for GSI {} not deregistered", gsi_);
  }
}

void Irqfd::trigger() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated: an interrupt is already pending.
  while (::write(fd_.get(), &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

std::expected<std::unique_ptr<IoEventFd>, Error> IoEventFd::create(Vm& vm,
                                                                   boost::asio::io_context& io,
                                                                   uint64_t addr, uint32_t len,
                                                                   bool pio) {
  Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) {
    spdlog::error("eventfd: {}", std::strerror(errno));
    return std::unexpected(Error::eventfd_failed);
  }
  if (auto r = vm.register_ioeventfd(fd.get(), addr, len, pio, std::nullopt); !r) {
    return std::unexpected(r.error());
  }
  std::unique_ptr<IoEventFd> bell(new IoEventFd(vm, io, addr, len, pio));
  bell->stream_.assign(fd.release());
  return bell;
}

IoEventFd::~IoEventFd() {
  if (auto r = vm_.unregister_ioeventfd(stream_.native_handle(), addr_, len_, pio_, std::nullopt);
      !r) {
    spdlog::warn("ioeventfd at {:#x} not deregistered", addr_);
  }
  boost::system::error_code ec;
  (void)stream_.close(ec);
}

// Reading the eventfd resets its counter: the handler gets how many doorbell writes the
// guest made since the last wake (KVM coalesces them), not one call per write.
void IoEventFd::async_wait(std::function<void(uint64_t)> handler) {
  stream_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, h = std::move(handler)](const boost::system::error_code& ec) {
        if (ec) return;
        uint64_t count = 0;
        if (::read(stream_.native_handle(), &count, sizeof(count)) == sizeof(count)) {
          h(count);
        } else {
          async_wait(h);  // spurious wake-up: wait again
        }
      });
}

}  // namespace labyrinth::vmm
