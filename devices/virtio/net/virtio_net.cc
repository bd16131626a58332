#include "devices/virtio/net/virtio_net.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>

#include <boost/asio/post.hpp>

#include "allocator/measure/tsc.h"
#include "devices/virtio/virtio_abi.h"

namespace labyrinth::devices::virtio {

VirtioNet::VirtioNet(NetConfig cfg, boost::asio::io_context& io, TapFd tap)
    : cfg_(std::move(cfg)),
      label_("virtio-net-" + cfg_.id),
      tap_name_(tap.name()),
      io_(io),
      tap_(io, tap.release()) {}

VirtioNet::~VirtioNet() = default;

uint32_t VirtioNet::device_id() const {
  return kNetDeviceId;
}

uint64_t VirtioNet::features() const {
  return kFVersion1 | kNetFMac | kNetFStatus;
}

// Built afresh on each read from constants (MAC, link always up); bytes past the
// struct read as 0 rather than failing, as a driver may probe the whole window.
void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data) {
  VirtioNetConfig c{};
  std::copy(cfg_.mac.begin(), cfg_.mac.end(), c.mac);
  c.status = kNetSLinkUp;
  std::array<uint8_t, sizeof c> bytes{};
  std::memcpy(bytes.data(), &c, sizeof c);
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = offset + i < bytes.size() ? bytes[offset + i] : 0;
  }
}

void VirtioNet::activate(uint64_t /*features: nothing to configure*/,
                         std::vector<SplitQueue> queues, VirtioInterrupt& irq) {
  // Relaxed: the transport's lock orders activate() and reset(); the value travels to
  // the event loop inside the posted handler.
  const uint64_t epoch = epoch_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::weak_ptr<VirtioNet> weak = weak_from_this();
  boost::asio::post(io_, [weak, q = std::move(queues), irq = &irq, epoch]() mutable {
    if (auto self = weak.lock()) self->on_activate(std::move(q), irq, epoch);
  });
}

void VirtioNet::reset() {
  epoch_.fetch_add(1, std::memory_order_relaxed);  // the failed activation's bit goes now
  std::weak_ptr<VirtioNet> weak = weak_from_this();
  boost::asio::post(io_, [weak] {
    if (auto self = weak.lock()) self->on_reset();
  });
}

bool VirtioNet::needs_reset() const {
  // Acquire: pairs with fail()'s release (the count before the bit).
  return failed_epoch_.load(std::memory_order_acquire) == epoch_.load(std::memory_order_relaxed);
}

// A kick that reached the transport (no ioeventfd): the queue state belongs to the
// event loop, so the work is posted there, never done on the vCPU thread.
void VirtioNet::notify(uint16_t queue) {
  std::weak_ptr<VirtioNet> weak = weak_from_this();
  boost::asio::post(io_, [weak, queue] {
    auto self = weak.lock();
    if (!self) return;
    if (queue == kRxQueue) {
      self->metrics_.kicks_rx.inc();
      self->process_rx();  // buffers posted: a held frame can go, the TAP be read again
    } else if (queue == kTxQueue) {
      self->metrics_.kicks_tx.inc();
      self->process_tx();
    }
  });
}

void VirtioNet::pause() {
  paused_ = true;
  boost::system::error_code ec;
  (void)tap_.cancel(ec);  // a wait already completed finds paused_ in process_rx
}

void VirtioNet::resume() {
  paused_ = false;
  process_tx();
  process_rx();  // re-arms the TAP wait
}

void VirtioNet::stop() {
  stopped_ = true;
  boost::system::error_code ec;
  (void)tap_.cancel(ec);
}

// On the event loop. Both queues are run at once: the driver may have posted TX
// chains and RX buffers before DRIVER_OK, and no kick will come for those.
void VirtioNet::on_activate(std::vector<SplitQueue> queues, VirtioInterrupt* irq, uint64_t epoch) {
  if (queues.size() != 2) return;  // the transport hands over every queue
  rx_.emplace(queues[kRxQueue]);
  tx_.emplace(queues[kTxQueue]);
  irq_ = irq;
  queue_epoch_ = epoch;
  broken_ = false;
  active_.store(true, std::memory_order_relaxed);
  process_tx();
  process_rx();
}

void VirtioNet::on_reset() {
  rx_.reset();
  tx_.reset();
  irq_ = nullptr;
  held_ = 0;  // the frame is lost with the device state, as on real hardware
  batch_ = 0;
  rx_returned_ = false;
  broken_ = false;
  active_.store(false, std::memory_order_relaxed);
}

void VirtioNet::fail() {
  broken_ = true;
  metrics_.needs_reset.inc();
  failed_epoch_.store(queue_epoch_, std::memory_order_release);  // pairs with needs_reset()
  // virtio 1.2, 2.1.2: DRIVER_OK is set (the queues are live), so the device MUST send a
  // configuration change notification after setting DEVICE_NEEDS_RESET.
  irq_->signal_config();
}

// One readiness wait at a time (waiting_); weak so a device gone before the wait
// completes is not touched.
void VirtioNet::arm_tap() {
  if (waiting_ || stopped_) return;
  waiting_ = true;
  std::weak_ptr<VirtioNet> weak = weak_from_this();
  tap_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                  [weak](const boost::system::error_code& ec) {
                    auto self = weak.lock();
                    if (!self) return;
                    self->waiting_ = false;
                    if (!ec) self->process_rx();
                  });
}

// Up to kBatch frames from the TAP per turn of the loop, so TX and other devices get
// their turn. A frame with no RX buffer to go into is held (held_) until the driver's
// next RX kick, not dropped: the TAP is not read again until it is delivered.
void VirtioNet::process_rx() {
  if (!rx_ || stopped_ || broken_ || paused_) return;
  SplitQueue& rx = *rx_;
  bool delivered_all = true;
  for (size_t n = 0; n < kBatch; ++n) {
    if (held_ == 0) {
      // NOLINTNEXTLINE(clang-analyzer-unix.BlockInCriticalSection): O_NONBLOCK fd, no lock held
      const ssize_t got = ::read(tap_.native_handle(), frame_.data(), frame_.size());
      if (got <= 0) break;  // EAGAIN: empty (errors: the next readiness tells)
      held_ready_ = measure::rdtsc();
      held_ = static_cast<size_t>(got);
    }
    if (!deliver(rx, std::span(frame_.data(), held_))) {
      delivered_all = false;
      break;
    }
    held_ = 0;
  }
  // Any used entry needs the interrupt (virtio 1.2, 2.7.10: with flags 0 the device MUST
  // notify), not only a delivered frame: a buffer given back empty (too small, malformed)
  // the driver must see too, or it never reposts it and the RX queue runs dry.
  if (batch_ != 0 || rx_returned_) {
    if (rx.needs_interrupt()) {
      irq_->signal_queue(kRxQueue);
      metrics_.irqs.inc();
    }
    latency_.host_rx.record_elapsed(std::span(batch_ready_.data(), batch_), measure::rdtsc());
    batch_ = 0;
    rx_returned_ = false;
  }
  if (broken_) return;  // the TAP is not read again until the reset
  if (delivered_all) {
    arm_tap();  // more may be waiting (a full batch) or come later
  } else {
    metrics_.rx_waits.inc();  // wait for the driver's RX kick
  }
}

// Returns false when the frame could not go (no buffer, or the ring is corrupt) and
// must be held; true when it was delivered or dropped for good.
bool VirtioNet::deliver(SplitQueue& rx, std::span<const std::byte> frame) {
  if (frame.size() > kMaxFrame) {
    metrics_.rx_drop_oversize.inc();
    return true;  // consumed
  }
  for (;;) {
    auto r = rx.pop(chain_);
    if (!r) {
      count(r.error());
      if (r.error() == QueueError::avail_idx_jump) {
        fail();  // corrupt ring: nothing to skip to
        return false;
      }
      rx_returned_ |= r.error() != QueueError::bad_head;  // pop() gave it back with length 0
      continue;
    }
    if (!*r) return false;
    break;
  }
  VirtioNetHdr hdr{};
  hdr.num_buffers = 1;
  const size_t total = sizeof hdr + frame.size();
  if (chain_.readable != 0 || chain_.writable < total) {
    metrics_.rx_drop_too_small.inc();
    rx.push_used(chain_.head, 0);
    rx_returned_ = true;
    return true;
  }
  // Scatter header then frame over the writable segments.
  std::array<std::span<const std::byte>, 2> parts{std::as_bytes(std::span(&hdr, 1)), frame};
  size_t part = 0, part_off = 0;
  for (uint32_t s = 0; s < chain_.count && part < parts.size(); ++s) {
    std::span<std::byte> dst = chain_.seg[s].bytes;
    size_t dst_off = 0;
    while (dst_off < dst.size() && part < parts.size()) {
      const size_t n = std::min(dst.size() - dst_off, parts[part].size() - part_off);
      std::memcpy(dst.data() + dst_off, parts[part].data() + part_off, n);
      dst_off += n;
      part_off += n;
      if (part_off == parts[part].size()) {
        ++part;
        part_off = 0;
      }
    }
  }
  rx.push_used(chain_.head, static_cast<uint32_t>(total));
  metrics_.rx_frames.inc();
  metrics_.rx_bytes.inc(frame.size());
  batch_ready_[batch_++] = held_ready_;
  return true;
}

// Every posted TX chain, each given back at once (length 0: the device writes nothing
// into TX buffers). A chain is linearised into tx_buf_ because a TAP write takes one
// frame per call; the virtio-net header in front is dropped (no offloads negotiated).
void VirtioNet::process_tx() {
  if (!tx_ || stopped_ || broken_ || paused_) return;
  SplitQueue& tx = *tx_;
  bool any = false;
  for (;;) {
    auto r = tx.pop(chain_);
    if (!r) {
      count(r.error());
      if (r.error() == QueueError::avail_idx_jump) {
        fail();  // corrupt ring: nothing to skip to
        break;
      }
      any = true;  // given back with length 0 where possible
      continue;
    }
    if (!*r) break;
    any = true;
    const uint64_t len = chain_.readable;
    if (len <= sizeof(VirtioNetHdr) || len > sizeof(VirtioNetHdr) + 65535 || chain_.writable != 0) {
      metrics_.tx_drop_malformed.inc();
      tx.push_used(chain_.head, 0);
      continue;
    }
    size_t off = 0;
    for (uint32_t s = 0; s < chain_.count; ++s) {
      std::memcpy(tx_buf_.data() + off, chain_.seg[s].bytes.data(), chain_.seg[s].bytes.size());
      off += chain_.seg[s].bytes.size();
    }
    tx.push_used(chain_.head, 0);
    const size_t frame = off - sizeof(VirtioNetHdr);
    const ssize_t n = ::write(tap_.native_handle(), tx_buf_.data() + sizeof(VirtioNetHdr), frame);
    if (n != static_cast<ssize_t>(frame)) {
      metrics_.tx_drop_backend.inc();
      continue;
    }
    metrics_.tx_frames.inc();
    metrics_.tx_bytes.inc(frame);
  }
  if (any && tx.needs_interrupt()) {
    irq_->signal_queue(kTxQueue);
    metrics_.irqs.inc();
  }
}

}  // namespace labyrinth::devices::virtio
