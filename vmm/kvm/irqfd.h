// vmm/kvm/irqfd.h — an interrupt line backed by an irqfd, and an ioeventfd doorbell.
//
//   auto irq = Irqfd::create(*vm, LABYRINTH_COM1_GSI).value();
//   irq->trigger();                     // eventfd write -> KVM raises GSI 4
//
//   auto bell = IoEventFd::create(*vm, io, addr, 4, /*pio=*/false).value();
//   bell->async_wait([](uint64_t rings) { ... });   // on the event loop
//
// Both deregister from KVM in their destructors (the Vm must outlive them).
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "devices/irq_line.h"
#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/vm.h"

namespace labyrinth::vmm {

class Irqfd final : public devices::IrqLine {
 public:
  static std::expected<std::unique_ptr<Irqfd>, Error> create(Vm& vm, uint32_t gsi);
  ~Irqfd() override;
  void trigger() override;  // one 8-byte eventfd write; thread-safe, never blocks for long
  uint32_t gsi() const noexcept { return gsi_; }

 private:
  Irqfd(Vm& vm, uint32_t gsi, Fd fd) : vm_(vm), gsi_(gsi), fd_(std::move(fd)) {}
  Vm& vm_;
  uint32_t gsi_;
  Fd fd_;
};

class IoEventFd {
 public:
  // A guest write of len bytes at addr (port when pio) signals the eventfd in-kernel.
  static std::expected<std::unique_ptr<IoEventFd>, Error> create(Vm& vm,
                                                                 boost::asio::io_context& io,
                                                                 uint64_t addr, uint32_t len,
                                                                 bool pio);
  ~IoEventFd();
  // Calls handler(count) on the event loop once the doorbell has rung (count >= 1
  // rings coalesced). Re-arm by calling again.
  void async_wait(std::function<void(uint64_t)> handler);

 private:
  IoEventFd(Vm& vm, boost::asio::io_context& io, uint64_t addr, uint32_t len, bool pio)
      : vm_(vm), stream_(io), addr_(addr), len_(len), pio_(pio) {}
  Vm& vm_;
  boost::asio::posix::stream_descriptor stream_;  // owns the eventfd
  uint64_t addr_;
  uint32_t len_;
  bool pio_;
};

}  // namespace labyrinth::vmm
