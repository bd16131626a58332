// lnic_bench — the lnic's host RX path alone: frames/s the device event loop can take
// from a backend into a guest that consumes and returns pages instantly (a fake guest
// on fake RAM; the page pool is real, on a real KVM VM fd, with its real worker
// zeroing freed pages). This is the host side of the 1 Mpps target; the guest side is
// measured end to end with `labyrinth run` (docs/lnic.md).
//
//   build/bench/lnic_bench
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "allocator/kvm/kvm_fd_sink.h"
#include "allocator/page_pool.h"
#include "allocator/tsc.h"
#include "devices/lnic/lnic.h"

namespace {

using namespace labyrinth;
using namespace labyrinth::devices::lnic;

constexpr uint64_t kRam = 8 << 20;
constexpr uint64_t kRx = 0x10000, kRet = 0x100000, kTx = 0x200000;
constexpr uint32_t kRing = 1024;

struct Ram final : devices::GuestRam {
  std::vector<std::byte> b = std::vector<std::byte>(kRam);
  std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t len) const override {
    if (gpa > kRam || len > kRam - gpa) return std::nullopt;
    return std::span<std::byte>(const_cast<std::byte*>(b.data()) + gpa, len);
  }
  template <class T>
  T* at(uint64_t gpa) {
    return reinterpret_cast<T*>(b.data() + gpa);
  }
};
struct Msi final : devices::MsiLine {
  bool configure(uint64_t, uint32_t) override { return true; }
  void trigger() override {}
};
struct NullBackend final : Backend {
  std::string_view name() const override { return "null"; }
  void start(FrameSink&) override {}
  void stop() override {}
  bool transmit(std::span<const std::byte>) override { return true; }
};

void BM_LnicRxPath(benchmark::State& state) {
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  const int vm = kvm >= 0 ? ioctl(kvm, KVM_CREATE_VM, 0) : -1;
  if (vm < 0) {
    state.SkipWithError("/dev/kvm is not available");
    return;
  }
  const uint32_t batch = static_cast<uint32_t>(state.range(0));
  alloc::KvmFdMemslotSink sink(vm, 1, 16);
  alloc::PoolConfig pc;
  pc.window_gpa = 4ull << 30;
  pc.window_size = 1ull << 30;
  pc.initial_chunks = 4;
  pc.max_chunks = 8;
  pc.low_pages = 512;
  pc.high_pages = 2048;
  pc.worker_poll = std::chrono::microseconds(100);
  auto pool = std::move(alloc::PagePool::create(pc, sink).value());  // valid config
  alloc::PageCache* cache = pool->attach_cache().value();
  boost::asio::io_context io;
  Ram ram;
  Msi msi;
  LnicConfig cfg;
  cfg.device_owner = 1;
  cfg.guest_owner = 2;
  auto nic =
      std::make_shared<Lnic>(cfg, io, *pool, cache, ram, msi, std::make_unique<NullBackend>());
  auto wr = [&](uint32_t reg, uint32_t v) {
    nic->write(reg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  wr(LNIC_REG_RX_RING_LO, kRx);
  wr(LNIC_REG_RX_RING_SIZE, kRing);
  wr(LNIC_REG_RET_RING_LO, kRet);
  wr(LNIC_REG_RET_RING_SIZE, kRing);
  wr(LNIC_REG_TX_RING_LO, kTx);
  wr(LNIC_REG_TX_RING_SIZE, kRing);
  wr(LNIC_REG_MSI_ADDR_LO, 0xFEE00000);
  wr(LNIC_REG_MSI_DATA, 0x40);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  io.poll();
  ram.at<lnic_ring_header>(kRx)->flags = LNIC_RING_F_NO_IRQ;  // a polling guest

  std::vector<std::byte> frame(64, std::byte{0x5A});
  auto* rxh = ram.at<lnic_ring_header>(kRx);
  auto* reth = ram.at<lnic_ring_header>(kRet);
  uint32_t cons = 0;
  for (auto _ : state) {
    const uint64_t t = alloc::rdtsc();
    for (uint32_t i = 0; i < batch; ++i) nic->receive(frame, t);
    nic->flush();
    // The "guest": consume every completion and return its page, one doorbell.
    const uint32_t prod = rxh->prod;
    for (; cons != prod; ++cons) {
      const auto* c = ram.at<lnic_rx_completion>(kRx + sizeof(lnic_ring_header) +
                                                 (cons & (kRing - 1)) * sizeof(lnic_rx_completion));
      auto* r = ram.at<lnic_return>(kRet + sizeof(lnic_ring_header) +
                                    (reth->prod & (kRing - 1)) * sizeof(lnic_return));
      r->page_gpa = c->page_gpa;
      r->t_guest_irq = 0;
      ++reth->prod;
    }
    rxh->cons = cons;
    nic->on_return_doorbell();
  }
  const auto& m = nic->metrics();
  state.SetItemsProcessed(static_cast<int64_t>(m.rx_frames.get()));
  state.counters["frames"] = static_cast<double>(m.rx_frames.get());
  state.counters["drop_no_page"] = static_cast<double>(m.rx_drop_no_page.get());
  state.counters["alloc_p50_ns"] =
      alloc::TscClock::instance().to_ns(nic->latency().alloc.percentile(50));
  state.counters["pool_fail_exhausted"] = static_cast<double>(pool->stats().fail_exhausted);
  nic.reset();
  pool->detach_cache(cache);
  pool.reset();
  close(vm);
  close(kvm);
}
BENCHMARK(BM_LnicRxPath)->Arg(1)->Arg(32)->Arg(64)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
