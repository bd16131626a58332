// ABI v3: the lnic as a PCI function (config space, BAR0 decoding, MSI-X), the reset a
// driver can wait for, the drain (RX_STOP + PAGES_HELD), TX completion interrupts, and
// the hostile cases of the new registers — on the same fixture as lnic_test.cc.
#include <functional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "tests/devices/lnic/lnic_fixture.h"

namespace labyrinth::devices::lnic::testing {
namespace {

std::vector<uint8_t> frame_of(size_t n) {
  return std::vector<uint8_t>(n, 0x5A);
}

TEST_F(LnicTest, PciFunctionIdentifiesItselfAndSizesItsBar) {
  EXPECT_EQ(fn_->read_config(0x00), LNIC_PCI_DEVICE << 16 | LNIC_PCI_VENDOR);
  EXPECT_EQ(fn_->read_config(0x08), LNIC_PCI_CLASS << 8 | LNIC_VERSION);
  EXPECT_EQ(fn_->read_config(0x10), kBar);
  fn_->write_config(0x10, 0xFFFFFFFF, 0xFFFFFFFF);  // the size probe
  EXPECT_EQ(fn_->read_config(0x10), ~(LNIC_BAR_SIZE - 1));
  fn_->write_config(0x10, kBar, 0xFFFFFFFF);
  EXPECT_EQ(fn_->read_config(0x10), kBar);            // the BAR does not move
  EXPECT_EQ(fn_->read_config(0x3C) >> 8 & 0xFF, 0u);  // no INTx pin
  EXPECT_EQ(fn_->read_config(0x34) & 0xFF, LNIC_PCI_CAP_MSIX);
  const uint32_t cap = fn_->read_config(LNIC_PCI_CAP_MSIX);
  EXPECT_EQ(cap & 0xFF, 0x11u);                           // MSI-X, the last capability
  EXPECT_EQ((cap >> 16 & 0x7FF) + 1, LNIC_MSIX_VECTORS);  // table size
  EXPECT_EQ(fn_->read_config(LNIC_PCI_CAP_MSIX + 4), LNIC_MSIX_TABLE_OFF);  // BIR 0
  EXPECT_EQ(fn_->read_config(LNIC_PCI_CAP_MSIX + 8), LNIC_MSIX_PBA_OFF);
  // BAR0 + 0 is the register file.
  EXPECT_EQ(bar_rd(LNIC_REG_MAGIC), LNIC_MAGIC);
  EXPECT_EQ(bar_rd(LNIC_REG_POOL_BASE_HI), static_cast<uint32_t>(kWindow >> 32));
}

TEST_F(LnicTest, RxVectorSignalsOnlyThroughAnUnmaskedEnabledMsixEntry) {
  bring_up();
  send(frame_of(64));
  nic_->flush();
  EXPECT_EQ(msi_.triggers.load(), 1);
  EXPECT_EQ(msi_.address, 0xFEE00000u);  // the unmask handed the message to the route
  EXPECT_EQ(msi_.data, 0x40u);
  // Function-masked: the signal waits in the PBA and fires at the unmask.
  fn_->write_config(LNIC_PCI_CAP_MSIX, 0xC0000000u, 0xFFFF0000u);
  send(frame_of(64));
  nic_->flush();
  EXPECT_EQ(msi_.triggers.load(), 1);
  EXPECT_EQ(bar_rd(LNIC_MSIX_PBA_OFF), 1u << LNIC_VEC_RX);
  fn_->write_config(LNIC_PCI_CAP_MSIX, 0x80000000u, 0xFFFF0000u);
  EXPECT_EQ(msi_.triggers.load(), 2);
  EXPECT_EQ(bar_rd(LNIC_MSIX_PBA_OFF), 0u);
  // A moved IRQ (Linux rewrites the message when affinity changes): new route.
  msix_entry(LNIC_VEC_RX, 0xFEE01000, 0x51);
  EXPECT_EQ(msi_.address, 0xFEE01000u);
  EXPECT_EQ(msi_.data, 0x51u);
}

// Bad BAR accesses and MSI-X table abuse: each counted by kind, nothing else changes,
// and the device goes on delivering through its (still valid) vectors.
TEST_F(LnicTest, BadBarAccessesAndMsixAbuseAreCountedAndTheDeviceKeepsWorking) {
  bring_up();
  EXPECT_EQ(bar_rd(0x1900), 0xFFFFFFFFu);  // between the PBA and the end of the BAR
  bar_wr(0x1C00, 1);
  bar_wr(LNIC_MSIX_PBA_OFF, 0xFFFFFFFF);                    // the PBA is read-only
  bar_wr(LNIC_MSIX_TABLE_OFF + 16 * LNIC_MSIX_VECTORS, 0);  // entry beyond the table
  uint8_t b = 1;
  fn_->write(LNIC_MSIX_TABLE_OFF + 12, std::span<const uint8_t>(&b, 1));  // byte write
  uint64_t q = 0;
  fn_->read(LNIC_MSIX_TABLE_OFF + 2, std::span(reinterpret_cast<uint8_t*>(&q), 8));  // misaligned
  EXPECT_EQ(q, ~uint64_t{0});
  EXPECT_EQ(nic_->metrics().msix_bad_access.get(), 6u);
  // An unusable message is refused at the unmask: the vector stays silent, not broken.
  msix_entry(LNIC_VEC_TX, 0x1000, 0x10);
  EXPECT_EQ(nic_->metrics().msix_rejects.get(), 1u);
  // Register file accesses of other widths stay the register file's counter.
  fn_->read(LNIC_REG_MAGIC, std::span(reinterpret_cast<uint8_t*>(&q), 8));
  EXPECT_EQ(nic_->metrics().mmio_bad_access.get(), 1u);
  EXPECT_EQ(nic_->metrics().violations(), 0u);
  send(frame_of(64));
  nic_->flush();
  EXPECT_EQ(msi_.triggers.load(), 1);
  EXPECT_EQ(nic_->metrics().rx_frames.get(), 1u);
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING);
}

// RESET used to store status 0 at once while the event loop still had the rings: a
// driver that freed them on seeing 0 could have a completion written into freed memory.
// STATUS now says STOPPING until the event loop has torn the rings down.
TEST_F(LnicTest, ResetReportsStoppingUntilTheDeviceHasStopped) {
  bring_up();
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_STOPPING);  // the event loop has not run yet
  // Still the device's rings until it stopped: a frame now is delivered (and signalled).
  send(frame_of(64));
  EXPECT_EQ(hdr(kRxRing)->prod, 1u);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);  // too early: ignored, counted
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_STOPPING);
  EXPECT_EQ(nic_->metrics().ignored_controls.get(), 1u);
  run_loop();
  EXPECT_EQ(rd(LNIC_REG_STATUS), 0u);
  EXPECT_EQ(msi_.triggers.load(), 1);  // the pending batch was signalled before the stop
  // Stopped: nothing writes the ring memory any more.
  std::memset(ram_.at<uint8_t>(kRxRing), 0xEE, 4096);
  send(frame_of(64));
  nic_->flush();
  wr(LNIC_REG_FLOOR_ARM, 1);  // posted to the event loop: finds no rings
  run_loop();
  EXPECT_FALSE(nic_->send_probe());
  for (size_t i = 0; i < 4096; ++i) ASSERT_EQ(*ram_.at<uint8_t>(kRxRing + i), 0xEE) << i;
  EXPECT_EQ(nic_->metrics().rx_drop_not_running.get(), 1u);
}

// A reset storm (RESET, RESET|ENABLE, RX_STOP in any order, many times) posts one stop,
// ends with a stopped device, and the next proper bring-up works.
TEST_F(LnicTest, ResetStormEndsStoppedAndTheNextBringUpWorks) {
  bring_up();
  send(frame_of(64));
  nic_->flush();
  for (int i = 0; i < 100; ++i) {
    wr(LNIC_REG_CONTROL, i % 3 == 0   ? LNIC_CTRL_RESET | LNIC_CTRL_ENABLE
                         : i % 3 == 1 ? LNIC_CTRL_RESET
                                      : LNIC_CTRL_RX_STOP);
    const uint32_t st = rd(LNIC_REG_STATUS);
    ASSERT_EQ(st, LNIC_STATUS_STOPPING) << i;  // never RUNNING while stopping
  }
  run_loop();
  EXPECT_EQ(rd(LNIC_REG_STATUS), 0u);
  EXPECT_EQ(nic_->metrics().resets.get(), 67u);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);  // not running: nothing to wait for
  EXPECT_EQ(rd(LNIC_REG_STATUS), 0u);
  // The page delivered before the storm is still the guest's, and still returnable.
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 1u);
  bring_up();
  consume_rx(1);
  return_pages({completion(0)->page_gpa});
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 0u);
  EXPECT_EQ(pool_->stats().in_use, 0u);
  EXPECT_EQ(nic_->metrics().violations(), 0u);
}

// The drain: RX_STOP ends completions (RX_STOPPED says when), RETURN is still served,
// PAGES_HELD counts down to 0, and after the reset the pool holds nothing for the guest.
TEST_F(LnicTest, RxStopKeepsServingReturnsUntilEveryPageIsBack) {
  bring_up();
  for (int i = 0; i < 5; ++i) send(frame_of(64));
  nic_->flush();
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 5u);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RX_STOP);
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING);  // not yet carried out
  run_loop();
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING | LNIC_STATUS_RX_STOPPED);
  send(frame_of(64));  // after RX_STOPPED: no completion
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 5u);
  EXPECT_EQ(nic_->metrics().rx_drop_not_running.get(), 1u);
  consume_rx(5);
  return_pages({completion(0)->page_gpa, completion(1)->page_gpa, completion(2)->page_gpa});
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 2u);
  return_pages({completion(3)->page_gpa, completion(4)->page_gpa});
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 0u);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
  run_loop();
  EXPECT_EQ(rd(LNIC_REG_STATUS), 0u);
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(pool_->stats().in_use, 0u);  // the pool's books: nothing with the guest
  EXPECT_EQ(nic_->metrics().violations(), 0u);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RX_STOP);  // not running: ignored, counted
  EXPECT_EQ(nic_->metrics().ignored_controls.get(), 1u);
}

TEST_F(LnicTest, ConsumedTxDescriptorsSignalTheTxVectorUnlessPolled) {
  bring_up();
  auto* h = hdr(kTxRing);
  auto desc = [&](uint32_t i) {
    return ram_.at<lnic_tx_desc>(kTxRing + sizeof(lnic_ring_header) +
                                 (i % 8) * sizeof(lnic_tx_desc));
  };
  *desc(0) = {kTxBuf, 60, 0};
  *desc(1) = {kTxBuf, 60, 0};
  h->prod = 2;
  nic_->on_tx_doorbell();
  EXPECT_EQ(h->cons, 2u);
  EXPECT_EQ(msi_tx_.triggers.load(), 1);  // one per doorbell's batch
  EXPECT_EQ(msi_.triggers.load(), 0);
  nic_->on_tx_doorbell();  // nothing new: no signal
  EXPECT_EQ(msi_tx_.triggers.load(), 1);
  h->flags = LNIC_RING_F_NO_IRQ;
  *desc(2) = {kTxBuf, 60, 0};
  h->prod = 3;
  nic_->on_tx_doorbell();
  EXPECT_EQ(h->cons, 3u);
  EXPECT_EQ(msi_tx_.triggers.load(), 1);
  EXPECT_EQ(nic_->metrics().tx_irqs.get(), 1u);
}

// The event loop (frames, returns) against a vCPU thread that resets, waits for the
// stop, and re-enables: the race the STOPPING state closes (run it under TSan).
TEST_F(LnicTest, ResetCyclesAgainstARunningEventLoopKeepExactBooks) {
  bring_up();
  auto guard = boost::asio::make_work_guard(io_);
  std::atomic<bool> done{false};
  io_.restart();
  std::thread loop([&] { io_.run(); });
  // Frames keep arriving on the event loop; each repost is one more frame.
  std::function<void()> tick = [&] {
    if (done.load()) return;
    send(frame_of(64));
    nic_->flush();
    boost::asio::post(io_, tick);
  };
  boost::asio::post(io_, tick);
  for (int cycle = 0; cycle < 50; ++cycle) {
    wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
    while (rd(LNIC_REG_STATUS) & LNIC_STATUS_STOPPING) std::this_thread::yield();
    ASSERT_EQ(rd(LNIC_REG_STATUS), 0u);
    // Stopped: the rings are the guest's alone; re-zero them as a driver would.
    std::memset(ram_.at<uint8_t>(kRxRing), 0, 4096);
    std::memset(ram_.at<uint8_t>(kRetRing), 0, 4096);
    std::memset(ram_.at<uint8_t>(kTxRing), 0, 4096);
    wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
    ASSERT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING);
  }
  done.store(true);
  guard.reset();
  loop.join();
  const auto& m = nic_->metrics();
  EXPECT_EQ(m.rx_frames.get(), m.pages_returned.get() + nic_->pages_with_guest());
  EXPECT_EQ(pool_->stats().in_use, nic_->pages_with_guest());
  EXPECT_EQ(m.violations(), 0u);
}

}  // namespace
}  // namespace labyrinth::devices::lnic::testing
