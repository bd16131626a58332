// lnic_bench — the lnic's host RX path alone: frames/s the device event loop can take
// from a backend into a guest that consumes and returns pages instantly (a fake guest
// on fake RAM; the page pool is real, zeroing each returned page as it is freed). This
// is the host side of the 1 Mpps target; the guest side is measured end to end with
// `labyrinth run --config configs/lnic_sink.json` (docs/lnic.md).
//
//   build/bench/lnic_bench [--benchmark_repetitions=5 ...]
//
// Rows: BM_LnicRxPath/<batch>/<irq>. batch = frames per flush (one backend read's worth);
// irq = 1: the guest takes interrupts (RX ring flags 0) and every flush signals the MSI —
// an eventfd write, as the real path's irqfd trigger (vmm/kvm/msi.cc) makes. No irqfd is
// bound to that eventfd here, so KVM's injection of the interrupt, which the kernel does
// inside that write on the real path, is not in the figure. irq = 0: a polling guest
// (LNIC_RING_F_NO_IRQ): no MSI at all. The two rows side by side show the eventfd's cost.
//
// No KVM needed: the pool sits on a HostOnlySink. The memslot sink is not on the RX path
// (alloc_page/transfer/free_page never call it; only pool creation and the worker's grow
// and shrink map or unmap chunks, off the event loop), so a KVM VM fd would change
// nothing measured here.
//
// A bench that stops receiving fails: every frame offered must be delivered, every
// page returned, with no drop and no refused return (the device's violation counters);
// otherwise the row reports an error naming the numbers and the process exits 1.
#include <benchmark/benchmark.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "allocator/measure/tsc.h"
#include "allocator/memslot_sink.h"
#include "allocator/page_pool.h"
#include "devices/lnic/lnic.h"
#include "tests/support/device_fakes.h"

namespace {

using namespace labyrinth;
using namespace labyrinth::devices::lnic;

constexpr uint64_t kRam = 8 << 20;
constexpr uint64_t kRx = 0x10000, kRet = 0x100000, kTx = 0x200000;
constexpr uint32_t kRing = 1024;

bool g_any_error = false;  // a row called SkipWithError: main() exits 1

// The real path's trigger without the VM behind it: one eventfd write per signal. The
// counter is never read; it cannot reach its maximum (2^64 - 2) in a bench's lifetime.
class EventfdMsi final : public devices::MsiLine {
 public:
  EventfdMsi() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~EventfdMsi() override {
    if (fd_ >= 0) close(fd_);
  }
  EventfdMsi(const EventfdMsi&) = delete;
  EventfdMsi& operator=(const EventfdMsi&) = delete;
  bool ok() const { return fd_ >= 0; }
  bool configure(uint64_t, uint32_t) override { return fd_ >= 0; }
  void trigger() override {
    const uint64_t one = 1;
    while (::write(fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    ++writes_;
  }
  uint64_t writes() const { return writes_; }

 private:
  int fd_;
  uint64_t writes_ = 0;
};

struct NullBackend final : Backend {
  std::string_view name() const override { return "null"; }
  void start(FrameSink&) override {}
  void stop() override {}
  bool transmit(std::span<const std::byte>) override { return true; }
};

void fail(benchmark::State& state, const char* what) {
  g_any_error = true;
  state.SkipWithError(what);
}

void BM_LnicRxPath(benchmark::State& state) {
  const uint32_t batch = static_cast<uint32_t>(state.range(0));
  const bool irq = state.range(1) != 0;
  alloc::HostOnlySink sink;
  alloc::PoolConfig pc;
  pc.window_gpa = 4ull << 30;
  pc.window_size = 1ull << 30;
  pc.initial_chunks = 4;
  pc.max_chunks = 8;
  pc.low_pages = 512;
  pc.high_pages = 2048;
  pc.worker_poll = std::chrono::microseconds(100);
  // As configs/lnic_sink.json and lnic_latency.json: the freeing thread (the event loop,
  // on the return doorbell) zeroes each page. With the worker policy the rate would hang
  // on the worker getting a CPU: on a loaded host it falls behind, the pool runs dry and
  // frames are dropped — this bench then reports an error rather than a rate.
  pc.zero_policy = alloc::ZeroPolicy::on_free;
  auto created = alloc::PagePool::create(pc, sink);
  if (!created) {
    fail(state, ("page pool: " + std::string(alloc::to_string(created.error()))).c_str());
    return;
  }
  auto pool = std::move(*created);
  alloc::PageCache* cache = pool->attach_cache().value();  // a fresh pool has free caches
  boost::asio::io_context io;
  devices::test::FakeRam ram{0, kRam};
  EventfdMsi msi, msi_tx;
  if (!msi.ok() || !msi_tx.ok()) {
    fail(state, "eventfd() failed");
    return;
  }
  LnicConfig cfg;
  cfg.device_owner = 1;
  cfg.guest_owner = 2;
  std::array<devices::MsiLine*, LNIC_MSIX_VECTORS> lines{&msi, &msi_tx};
  auto nic =
      std::make_shared<Lnic>(cfg, io, *pool, cache, ram, lines, std::make_unique<NullBackend>());
  auto wr = [&](uint32_t reg, uint32_t v) {
    nic->write(reg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  wr(LNIC_REG_RX_RING_LO, kRx);
  wr(LNIC_REG_RX_RING_SIZE, kRing);
  wr(LNIC_REG_RET_RING_LO, kRet);
  wr(LNIC_REG_RET_RING_SIZE, kRing);
  wr(LNIC_REG_TX_RING_LO, kTx);
  wr(LNIC_REG_TX_RING_SIZE, kRing);
  // The RX vector as a driver programs it: message, unmask, MSI-X enable.
  auto table = [&](uint32_t off, uint32_t v) {
    (void)nic->msix().write_table(off, std::span(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  table(0, 0xFEE00000);
  table(8, 0x40);
  table(12, 0);
  nic->msix().write_control(devices::MsixTable::kEnable, devices::MsixTable::kEnable);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  io.poll();
  ram.at<lnic_ring_header>(kRx)->flags = irq ? 0 : LNIC_RING_F_NO_IRQ;

  std::vector<std::byte> frame(64, std::byte{0x5A});
  auto* rxh = ram.at<lnic_ring_header>(kRx);
  auto* reth = ram.at<lnic_ring_header>(kRet);
  uint32_t cons = 0;
  uint64_t offered = 0;
  for (auto _ : state) {
    const uint64_t t = measure::rdtsc();
    for (uint32_t i = 0; i < batch; ++i) nic->receive(frame, t);
    offered += batch;
    nic->flush();
    // The "guest": consume every completion and return its page, naming the completion
    // that delivered it (seq, ABI v2), one doorbell.
    const uint32_t prod = rxh->prod;
    for (; cons != prod; ++cons) {
      const auto* c = ram.at<lnic_rx_completion>(kRx + sizeof(lnic_ring_header) +
                                                 (cons & (kRing - 1)) * sizeof(lnic_rx_completion));
      auto* r = ram.at<lnic_return>(kRet + sizeof(lnic_ring_header) +
                                    (reth->prod & (kRing - 1)) * sizeof(lnic_return));
      r->page_gpa = c->page_gpa;
      r->t_guest_irq = 0;
      r->seq = c->seq;
      ++reth->prod;
    }
    rxh->cons = cons;
    nic->on_return_doorbell();
  }
  const auto& m = nic->metrics();
  const auto flushes = static_cast<uint64_t>(state.iterations());
  const uint64_t frames = m.rx_frames.get();
  const uint64_t returned = m.pages_returned.get();
  state.SetItemsProcessed(static_cast<int64_t>(frames));
  state.counters["frames"] = static_cast<double>(frames);
  state.counters["drops"] = static_cast<double>(m.rx_drops());
  state.counters["drop_no_page"] = static_cast<double>(m.rx_drop_no_page.get());
  state.counters["violations"] = static_cast<double>(m.violations());
  state.counters["viol_stale"] = static_cast<double>(m.viol_stale.get());
  state.counters["msi_writes"] = static_cast<double>(msi.writes());
  state.counters["alloc_p50_ns"] =
      measure::TscClock::instance().to_ns(nic->latency().alloc.percentile(50));
  state.counters["alloc_net_zero"] = static_cast<double>(m.alloc_net_zero.get());
  state.counters["pool_fail_exhausted"] = static_cast<double>(pool->stats().fail_exhausted);
  // Every frame offered delivered and every page back, or the figure is not the RX
  // path's (a drained pool measures drops).
  if (frames != offered || returned != offered || m.rx_drops() != 0 || m.violations() != 0 ||
      msi.writes() != (irq ? flushes : 0)) {
    char why[320];
    (void)std::snprintf(
        why, sizeof why,
        "the RX path stopped receiving: %lu frames offered, %lu delivered, %lu "
        "pages returned, %lu drops (%lu no page), %lu refused returns (%lu "
        "stale), %lu MSI writes (%lu expected)",
        static_cast<unsigned long>(offered), static_cast<unsigned long>(frames),
        static_cast<unsigned long>(returned), static_cast<unsigned long>(m.rx_drops()),
        static_cast<unsigned long>(m.rx_drop_no_page.get()),
        static_cast<unsigned long>(m.violations()), static_cast<unsigned long>(m.viol_stale.get()),
        static_cast<unsigned long>(msi.writes()), static_cast<unsigned long>(irq ? flushes : 0));
    fail(state, why);
  }
  nic.reset();
  pool->detach_cache(cache);
  pool.reset();
}
BENCHMARK(BM_LnicRxPath)
    ->ArgNames({"batch", "irq"})
    ->ArgsProduct({{1, 32, 64}, {0, 1}})
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace

// BENCHMARK_MAIN, plus a non-zero exit status when a row reported an error, so that a
// script running the bench notices.
int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_any_error) {
    (void)std::fputs("lnic_bench: a row reported an error (see above)\n", stderr);
    return 1;
  }
  return 0;
}
