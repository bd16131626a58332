// tests/devices/lnic/lnic_fixture.h — an lnic on a real page pool, fake guest RAM, a
// counting MSI line, and a test "guest" that drives the rings the way a driver (or a
// hostile guest) would. No /dev/kvm: the pool maps its chunks through a HostOnlySink
// (the same pinned pages and atomic path; the device reaches pages by Page::host and
// its guest only through FakeRam and the MSI line, neither of which needs a VM).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "allocator/measure/tsc.h"
#include "allocator/memslot_sink.h"
#include "allocator/page_pool.h"
#include "devices/lnic/lnic.h"
#include "devices/lnic/lnic_pci.h"
#include "tests/support/device_fakes.h"

namespace labyrinth::devices::lnic::testing {

constexpr uint64_t kRamSize = 4 << 20;
constexpr alloc::OwnerId kDevOwner = 0x1000;
constexpr alloc::OwnerId kGuestOwner = 0x2000;
constexpr uint64_t kWindow = 4ull << 30;
constexpr uint32_t kBar = 0xD0000000;

using devices::test::FakeRam;
using devices::test::RecordingMsi;

// Records transmitted frames; frames are injected by calling the lnic directly.
class RecordingBackend final : public Backend {
 public:
  std::string_view name() const override { return "recording"; }
  void start(FrameSink& sink) override { sink_ = &sink; }
  void stop() override { sink_ = nullptr; }
  bool transmit(std::span<const std::byte> frame) override {
    sent.emplace_back(frame.begin(), frame.end());
    return true;
  }
  std::vector<std::vector<std::byte>> sent;
  FrameSink* sink_ = nullptr;
};

// Guest-RAM layout used by the tests.
constexpr uint64_t kRxRing = 0x10000, kRetRing = 0x30000, kTxRing = 0x40000, kTxBuf = 0x50000;

class LnicTest : public ::testing::Test {
 protected:
  void SetUp() override { make_pool(/*chunks=*/1, /*max=*/1); }

  void make_pool(uint32_t chunks, uint32_t max) {
    fn_.reset();
    nic_.reset();
    if (pool_ && cache_) pool_->detach_cache(cache_);
    pool_.reset();
    alloc::PoolConfig pc;
    pc.window_gpa = kWindow;
    pc.window_size = 1ull << 30;
    pc.chunk_bytes = 64 << 10;  // 16 pages per chunk: exhaustion is easy to reach
    pc.initial_chunks = chunks;
    pc.max_chunks = max;
    pc.min_pages = 2;
    pc.low_pages = 4;
    pc.high_pages = 8;
    pc.cache_capacity = 4;
    pc.start_worker = false;
    pool_ = std::move(alloc::PagePool::create(pc, sink_).value());  // valid config
    cache_ = pool_->attach_cache().value();                         // fresh pool: free slots
    auto be = std::make_unique<RecordingBackend>();
    backend_ = be.get();
    LnicConfig cfg;
    cfg.id = "test0";
    cfg.mac = {0x02, 0x4C, 0x42, 0x00, 0x00, 0x07};
    cfg.device_owner = kDevOwner;
    cfg.guest_owner = kGuestOwner;
    cfg.test_inject_delay_ns = inject_delay_ns_;
    cfg.test_hostile = hostile_;
    nic_ = std::make_shared<Lnic>(cfg, io_, *pool_, cache_, ram_, lines_, std::move(be));
    fn_ = std::make_shared<LnicPci>(nic_, kBar);
    nic_->start();
  }

  void TearDown() override {
    fn_.reset();
    nic_.reset();
    if (pool_ && cache_) pool_->detach_cache(cache_);
  }

  void wr(uint32_t reg, uint32_t v) {
    nic_->write(reg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  uint32_t rd(uint32_t reg) {
    uint32_t v = 0;
    nic_->read(reg, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  // BAR0 as the guest sees it (register file, MSI-X table, PBA) and config space.
  void bar_wr(uint64_t off, uint32_t v) {
    fn_->write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  uint32_t bar_rd(uint64_t off) {
    uint32_t v = 0;
    fn_->read(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  // MSI-X entry `vector` programmed with (address, data) and unmasked, as a driver does.
  void msix_entry(uint32_t vector, uint64_t address, uint32_t data) {
    const uint64_t e = LNIC_MSIX_TABLE_OFF + vector * 16ull;
    bar_wr(e + 12, 1);  // masked while it is rewritten
    bar_wr(e, static_cast<uint32_t>(address));
    bar_wr(e + 4, static_cast<uint32_t>(address >> 32));
    bar_wr(e + 8, data);
    bar_wr(e + 12, 0);
  }
  void msix_enable() { fn_->write_config(LNIC_PCI_CAP_MSIX, 0x80000000u, 0xFFFF0000u); }
  void run_loop() {
    io_.restart();
    io_.poll();
  }

  // Configures rings of `size` entries and enables the NIC, like a driver.
  void bring_up(uint32_t size = 8) {
    wr(LNIC_REG_RX_RING_LO, kRxRing);
    wr(LNIC_REG_RX_RING_HI, 0);
    wr(LNIC_REG_RX_RING_SIZE, size);
    wr(LNIC_REG_RET_RING_LO, kRetRing);
    wr(LNIC_REG_RET_RING_SIZE, size);
    wr(LNIC_REG_TX_RING_LO, kTxRing);
    wr(LNIC_REG_TX_RING_SIZE, size);
    msix_entry(LNIC_VEC_RX, 0xFEE00000, 0x40);
    msix_entry(LNIC_VEC_TX, 0xFEE00000, 0x41);
    msix_enable();
    wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
    ASSERT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING);
    run_loop();  // the activation is posted to the event loop
  }

  lnic_ring_header* hdr(uint64_t ring) { return ram_.at<lnic_ring_header>(ring); }
  lnic_rx_completion* completion(uint32_t i, uint32_t size = 8) {
    return ram_.at<lnic_rx_completion>(kRxRing + sizeof(lnic_ring_header) +
                                       (i & (size - 1)) * sizeof(lnic_rx_completion));
  }
  // Guest consumes completion i (advances the RX cons index).
  void consume_rx(uint32_t upto) { hdr(kRxRing)->cons = upto; }
  // The seq of the newest completion in the RX ring (of `rx_size` entries) that
  // delivered the page at gpa; 0 if none did (what a well-behaved guest names).
  uint64_t delivered_seq(uint64_t gpa, uint32_t rx_size = 8) {
    uint64_t seq = 0;
    bool found = false;
    for (uint32_t i = 0; i < rx_size; ++i) {
      const lnic_rx_completion* c = completion(i, rx_size);
      if (c->page_gpa == (gpa & ~uint64_t{4095}) && (!found || c->seq > seq)) {
        seq = c->seq;
        found = true;
      }
    }
    return seq;
  }
  // Guest returns these addresses, each naming the completion that delivered it, and
  // rings the doorbell.
  void return_pages(const std::vector<uint64_t>& gpas, uint32_t size = 8) {
    std::vector<lnic_return> entries;
    for (uint64_t g : gpas) entries.push_back(lnic_return{g, 0, delivered_seq(g, size), 0});
    return_entries(entries, size);
  }
  // Guest posts exactly these RETURN entries and rings the doorbell.
  void return_entries(const std::vector<lnic_return>& entries, uint32_t size = 8) {
    lnic_ring_header* h = hdr(kRetRing);
    for (const lnic_return& r : entries) {
      *ram_.at<lnic_return>(kRetRing + sizeof(lnic_ring_header) +
                            (h->prod & (size - 1)) * sizeof(lnic_return)) = r;
      ++h->prod;
    }
    nic_->on_return_doorbell();
  }
  void send(const std::vector<uint8_t>& frame) {
    nic_->receive(std::as_bytes(std::span(frame)), measure::rdtsc());
  }

  alloc::HostOnlySink sink_;
  std::unique_ptr<alloc::PagePool> pool_;
  alloc::PageCache* cache_ = nullptr;
  boost::asio::io_context io_;
  FakeRam ram_{0, kRamSize};
  RecordingMsi msi_, msi_tx_;  // LNIC_VEC_RX, LNIC_VEC_TX
  std::array<MsiLine*, LNIC_MSIX_VECTORS> lines_{&msi_, &msi_tx_};
  RecordingBackend* backend_ = nullptr;
  std::shared_ptr<Lnic> nic_;
  std::shared_ptr<LnicPci> fn_;
  uint64_t inject_delay_ns_ = 0;
  std::vector<HostileKind> hostile_;  // LnicConfig::test_hostile, set before make_pool
};

}  // namespace labyrinth::devices::lnic::testing
