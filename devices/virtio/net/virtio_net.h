// devices/virtio/net/virtio_net.h — virtio-net over a TAP device.
//
// The device side of virtio-net (virtio 1.2, 5.1) behind any virtio transport: two
// queues (0 RX, 1 TX), features VIRTIO_F_VERSION_1, VIRTIO_NET_F_MAC and
// VIRTIO_NET_F_STATUS (link always up). No offloads (no checksum, TSO or mergeable
// buffers): every frame is at most 1514 bytes and the 12-byte virtio-net header is
// all zero but num_buffers = 1; the TAP is opened without IFF_VNET_HDR.
//
//   auto net = std::make_shared<VirtioNet>(NetConfig{"eth0", mac}, io, std::move(tap));
//   transport = std::make_shared<VirtioPciTransport>(net, ram, bar, lines);
//   net->start();     // event loop: TAP reads begin once the driver is running
//
// RX (event loop, the device's "interrupt path"): a frame is read from the TAP
// (t_ready = TSC after the read), a chain popped from the RX queue, header and frame
// copied into its writable buffers, the chain put on the used ring; after a batch
// (TAP empty, or 64 frames) the queue interrupt is signalled unless the driver
// suppressed it, and host_rx records t_done - t_ready for each frame of the batch; a
// buffer given back empty (too small, malformed) is signalled the same way.
// With no RX buffer posted the frame is held and the TAP is not read (backpressure,
// no drop) until the driver kicks the RX queue.
// TX (event loop, on a kick): each chain's readable bytes minus the header are one
// frame written to the TAP; the chain goes back with length 0.
// Malformed chains (split_queue.h) are counted by reason and skipped.
// A corrupt ring — avail.idx more than a queue ahead of the device, on either queue —
// is counted once and stops the device (QEMU's virtio_error does the same): it sets
// DEVICE_NEEDS_RESET (needs_reset()), signals a configuration change, and touches no
// queue and reads no frame from the TAP until the driver resets it (virtio 1.2, 2.1.2).
// There is no position to skip to, and a driver waiting for that bit knows the device
// has seen the index.
//
// Threads: activate/reset/notify may come from vCPU threads: they post to the event
// loop, where all queue and TAP work runs. read_config is lock-free (constant data).
// needs_reset is lock-free: activate() and reset() (vCPU threads, serialised by the
// transport's lock) each advance epoch_; an activation's queues carry its epoch to the
// event loop, which stores it in failed_epoch_ (release, after the count: pairs with
// the acquire in needs_reset) when those queues turn out corrupt. The bit shows while
// failed_epoch_ == epoch_: a failure of queues the driver has reset since (a stale
// handler still running) never marks the device's next activation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "devices/net/tap.h"
#include "devices/virtio/net/net_metrics.h"
#include "devices/virtio/virtio_device.h"

namespace labyrinth::devices::virtio {

struct NetConfig {
  std::string id = "eth0";  // iface_id
  std::array<uint8_t, 6> mac{};
};

class VirtioNet final : public VirtioDevice, public std::enable_shared_from_this<VirtioNet> {
 public:
  static constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
  static constexpr uint16_t kQueueSize = 256;
  static constexpr size_t kMaxFrame = 1514;  // no offloads: MTU 1500 + Ethernet header
  static constexpr size_t kBatch = 64;

  VirtioNet(NetConfig cfg, boost::asio::io_context& io, TapFd tap);
  ~VirtioNet() override;

  std::string_view label() const override { return label_; }
  uint32_t device_id() const override;
  uint64_t features() const override;
  uint16_t num_queues() const override { return 2; }
  uint16_t max_queue_size() const override { return kQueueSize; }
  void read_config(uint32_t offset, std::span<uint8_t> data) override;
  void write_config(uint32_t, std::span<const uint8_t>) override {}  // MAC is read-only
  void activate(uint64_t features, std::vector<SplitQueue> queues, VirtioInterrupt& irq) override;
  void notify(uint16_t queue) override;
  void reset() override;
  bool needs_reset() const override;

  void stop();  // event loop (or after it stopped): no more TAP reads
  // Event loop: while paused (PATCH /vm) neither queue is touched and the TAP is not
  // read (frames wait in the TAP's own queue); kicks and activations are taken up by
  // resume(), which runs both queues as an activation does.
  void pause();
  void resume();
  const NetConfig& config() const { return cfg_; }
  const std::string& tap_name() const { return tap_name_; }
  const NetMetrics& metrics() const { return metrics_; }
  const NetLatency& latency() const { return latency_; }
  bool active() const { return active_.load(std::memory_order_relaxed); }

 private:
  // Event loop only.
  void on_activate(std::vector<SplitQueue> queues, VirtioInterrupt* irq, uint64_t epoch);
  void on_reset();
  void arm_tap();
  void process_rx();
  bool deliver(SplitQueue& rx, std::span<const std::byte> frame);  // false: no RX buffer
  void process_tx();
  void count(QueueError e) { metrics_.bad_chains[static_cast<size_t>(e)].inc(); }
  void fail();  // a corrupt ring: DEVICE_NEEDS_RESET until the driver resets

  NetConfig cfg_;
  std::string label_;
  std::string tap_name_;
  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor tap_;         // owns the TAP fd
  std::atomic<bool> active_{false};                   // mirrors queues_ for other threads
  std::atomic<uint64_t> epoch_{0};                    // activations + resets (vCPU threads)
  std::atomic<uint64_t> failed_epoch_{~uint64_t{0}};  // the epoch whose queues failed

  // Event-loop state.
  std::optional<SplitQueue> rx_, tx_;
  VirtioInterrupt* irq_ = nullptr;
  uint64_t queue_epoch_ = 0;  // the epoch of rx_/tx_
  bool broken_ = false;       // fail() ran: no queue or TAP work until the reset
  bool waiting_ = false;      // an async_wait on the TAP is outstanding
  bool stopped_ = false;
  bool paused_ = false;
  size_t held_ = 0;  // bytes of a frame read but not yet delivered (no RX buffer)
  std::array<std::byte, 65536> frame_{};
  uint64_t held_ready_ = 0;
  std::array<std::byte, 65536 + 16> tx_buf_{};
  std::array<uint64_t, kBatch> batch_ready_{};
  size_t batch_ = 0;
  bool rx_returned_ = false;  // an RX chain went back empty since the last interrupt check
  SplitQueue::Chain chain_;

  NetMetrics metrics_;
  NetLatency latency_;
};

}  // namespace labyrinth::devices::virtio
