// RETURN doorbell suppression (LNIC_F_RET_EVENT, guest/abi/lnic.h): a driver that
// acknowledges it rings the RETURN doorbell only when ret_event says so, and the device
// takes returns without a doorbell after each RX batch. These tests drive the device as
// such a driver would and check the books: no page lost or owned twice, the device asks
// for a doorbell when it must, and what the guest writes is still validated and counted.
#include "tests/devices/lnic/lnic_fixture.h"

namespace labyrinth::devices::lnic::testing {
namespace {

std::vector<uint8_t> frame64() {
  return std::vector<uint8_t>(64, 0x5A);
}

// The driver's rule: ring when the entries just published (old .. new) include event.
bool need_doorbell(uint32_t event, uint32_t new_prod, uint32_t old_prod) {
  return static_cast<uint32_t>(new_prod - event - 1) < static_cast<uint32_t>(new_prod - old_prod);
}

class LnicRetEventTest : public LnicTest {
 protected:
  // Acknowledges LNIC_F_RET_EVENT and brings the NIC up with rings of `size` entries.
  void bring_up_acked(uint32_t size) {
    wr(LNIC_REG_DRIVER_FEATURES, LNIC_F_RET_EVENT);
    bring_up(size);
  }
  // `n` frames delivered in one batch and consumed; returns their completions.
  std::vector<lnic_rx_completion> deliver(uint32_t n, uint32_t size) {
    const uint32_t first = hdr(kRxRing)->prod;
    for (uint32_t i = 0; i < n; ++i) send(frame64());
    nic_->flush();
    std::vector<lnic_rx_completion> got;
    for (uint32_t i = first; i != hdr(kRxRing)->prod; ++i) got.push_back(*completion(i, size));
    consume_rx(hdr(kRxRing)->prod);
    return got;
  }
  // Publishes RETURN entries as a suppressing driver does when ret_event is not crossed:
  // entries and prod, no doorbell.
  void publish(const std::vector<lnic_return>& entries, uint32_t size) {
    lnic_ring_header* h = hdr(kRetRing);
    for (const lnic_return& r : entries) {
      *ram_.at<lnic_return>(kRetRing + sizeof(lnic_ring_header) +
                            (h->prod & (size - 1)) * sizeof(lnic_return)) = r;
      ++h->prod;
    }
  }
  static std::vector<lnic_return> returns_of(const std::vector<lnic_rx_completion>& cs) {
    std::vector<lnic_return> r;
    for (const lnic_rx_completion& c : cs) r.push_back(lnic_return{c.page_gpa, 0, c.seq, 0});
    return r;
  }
  // The device's and the pool's books agree, and the pool is consistent.
  void expect_books_exact() {
    EXPECT_EQ(pool_->stats().in_use, nic_->pages_with_guest());
    EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), nic_->pages_with_guest());
    EXPECT_EQ(pool_->stats().violations(), 0u);
    EXPECT_EQ(pool_->audit(), "");
  }
};

TEST_F(LnicRetEventTest, DriverFeaturesNamingBitsNotOfferedAreRefusedAtEnable) {
  wr(LNIC_REG_DRIVER_FEATURES, LNIC_F_RET_EVENT | 0x80000000u);
  wr(LNIC_REG_RX_RING_LO, kRxRing);
  wr(LNIC_REG_RX_RING_SIZE, 8);
  wr(LNIC_REG_RET_RING_LO, kRetRing);
  wr(LNIC_REG_RET_RING_SIZE, 8);
  wr(LNIC_REG_TX_RING_LO, kTxRing);
  wr(LNIC_REG_TX_RING_SIZE, 8);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_CONFIG_ERROR);
  EXPECT_EQ(rd(LNIC_REG_CONFIG_ERROR), static_cast<uint32_t>(LNIC_REG_DRIVER_FEATURES));
  EXPECT_EQ(nic_->metrics().config_errors.get(), 1u);
  EXPECT_EQ(nic_->metrics().mmio_bad_access.get(), 0u);  // a register, not an unknown offset
  wr(LNIC_REG_DRIVER_FEATURES, LNIC_F_RET_EVENT);
  EXPECT_EQ(rd(LNIC_REG_DRIVER_FEATURES), LNIC_F_RET_EVENT);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  EXPECT_EQ(rd(LNIC_REG_STATUS), LNIC_STATUS_RUNNING);
  // RESET forgets it: the next driver acknowledges what it uses.
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
  run_loop();
  EXPECT_EQ(rd(LNIC_REG_DRIVER_FEATURES), 0u);
}

TEST_F(LnicRetEventTest, ReturnsPublishedWithoutADoorbellAreTakenAfterTheNextRxBatch) {
  bring_up_acked(16);
  const auto first = deliver(4, 16);
  ASSERT_EQ(first.size(), 4u);
  // Comfortable, the device wants a doorbell a quarter of the ring past cons: when the
  // entry at index 4 is published. Three entries (0..2) do not cross it.
  EXPECT_EQ(hdr(kRetRing)->ret_event, 4u);
  EXPECT_FALSE(need_doorbell(hdr(kRetRing)->ret_event, 3, 0));
  EXPECT_TRUE(need_doorbell(hdr(kRetRing)->ret_event, 5, 0));
  // Two real returns and a duplicate of the first (a driver bug), no doorbell.
  auto r = returns_of(first);
  publish({r[0], r[1], r[0]}, 16);
  EXPECT_EQ(nic_->pages_with_guest(), 4u);  // nothing taken before the device looks
  expect_books_exact();
  // The next RX batch takes them: two pages back, the duplicate refused and counted.
  const auto second = deliver(1, 16);
  const LnicMetrics& m = nic_->metrics();
  EXPECT_EQ(hdr(kRetRing)->cons, 3u);
  EXPECT_EQ(m.pages_returned.get(), 2u);
  EXPECT_EQ(m.pages_returned_unrung.get(), 2u);
  EXPECT_EQ(m.viol_double_free.get(), 1u);
  EXPECT_EQ(m.ret_doorbells.get(), 0u);
  EXPECT_EQ(nic_->pages_with_guest(), 3u);  // first[2], first[3], second[0]
  expect_books_exact();
  EXPECT_EQ(hdr(kRetRing)->ret_event, 3u + 4u);  // moved on with cons
  // The rest come back through a doorbell: every page home, exactly once.
  publish({r[2], r[3], returns_of(second)[0]}, 16);
  nic_->on_return_doorbell();
  EXPECT_EQ(m.pages_returned.get(), 5u);
  EXPECT_EQ(m.pages_returned_unrung.get(), 2u);
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(m.violations(), 1u);
  expect_books_exact();
}

TEST_F(LnicRetEventTest, APassAfterAnRxBatchIsBoundedAndAsksForTheRest) {
  make_pool(/*chunks=*/8, /*max=*/8);  // 128 pages
  bring_up_acked(128);
  const auto cs = deliver(100, 128);
  ASSERT_EQ(cs.size(), 100u);
  publish(returns_of(cs), 128);  // (a driver rings here: its doorbell is not handled yet)
  deliver(1, 128);
  const LnicMetrics& m = nic_->metrics();
  EXPECT_EQ(m.pages_returned.get(), LNIC_RET_PASS_MAX);
  EXPECT_EQ(hdr(kRetRing)->cons, LNIC_RET_PASS_MAX);
  // 36 entries left, more than a quarter of the ring: the event is the prod the device
  // saw, so the driver's very next return rings (an event behind prod would never be).
  EXPECT_EQ(hdr(kRetRing)->ret_event, 100u);
  EXPECT_TRUE(need_doorbell(hdr(kRetRing)->ret_event, 101, 100));
  expect_books_exact();
  deliver(1, 128);
  EXPECT_EQ(m.pages_returned.get(), 100u);
  EXPECT_EQ(nic_->pages_with_guest(), 2u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 100u + 32u);
  expect_books_exact();
}

TEST_F(LnicRetEventTest, AFailedAllocationAsksForTheVeryNextReturn) {
  bring_up_acked(8);  // the pool: 16 pages, one chunk at most
  const auto a = deliver(8, 8);
  const auto b = deliver(8, 8);  // the guest holds all 16
  ASSERT_EQ(a.size() + b.size(), 16u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 2u);  // comfortable: a quarter of the ring
  send(frame64());                          // no page: dropped, and the device wants pages
  nic_->flush();
  const LnicMetrics& m = nic_->metrics();
  EXPECT_EQ(m.rx_drop_no_page.get(), 1u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 0u);  // the entry at index 0: the next return rings
  EXPECT_TRUE(need_doorbell(hdr(kRetRing)->ret_event, 1, 0));
  EXPECT_GE(m.ret_event_now.get(), 1u);
  publish({returns_of(a)[0]}, 8);
  nic_->on_return_doorbell();
  EXPECT_EQ(m.pages_returned.get(), 1u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 1u);  // still starved: no allocation succeeded yet
  expect_books_exact();
  // Once an allocation succeeds at the first try the device is comfortable again.
  pool_->run_worker_once();  // the returned page is zeroed
  deliver(1, 8);
  EXPECT_EQ(m.rx_frames.get(), 17u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 1u + 2u);
  expect_books_exact();
}

TEST_F(LnicRetEventTest, RxStopTakesUnrungReturnsAndAsksForEveryLaterOne) {
  bring_up_acked(8);
  const auto cs = deliver(3, 8);
  publish({returns_of(cs)[0], returns_of(cs)[1]}, 8);
  wr(LNIC_REG_CONTROL, LNIC_CTRL_RX_STOP);
  run_loop();
  EXPECT_NE(rd(LNIC_REG_STATUS) & LNIC_STATUS_RX_STOPPED, 0u);
  EXPECT_EQ(nic_->pages_with_guest(), 1u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 2u);  // the driver's next return rings
  EXPECT_TRUE(need_doorbell(hdr(kRetRing)->ret_event, 3, 2));
  publish({returns_of(cs)[2]}, 8);
  nic_->on_return_doorbell();
  EXPECT_EQ(rd(LNIC_REG_PAGES_HELD), 0u);
  expect_books_exact();
}

// The pass after an RX batch reads a guest-written prod that no doorbell announced: an
// impossible one is counted and nothing is acted on, as on the doorbell path.
TEST_F(LnicRetEventTest, AnImpossibleReturnProdSeenWithoutADoorbellIsCountedAndIgnored) {
  bring_up_acked(8);
  const auto cs = deliver(2, 8);
  publish(returns_of(cs), 8);
  hdr(kRetRing)->prod = 2 + 8 + 1;  // a ring and more past cons
  deliver(1, 8);
  const LnicMetrics& m = nic_->metrics();
  EXPECT_EQ(m.viol_bad_index.get(), 1u);
  EXPECT_EQ(m.pages_returned.get(), 0u);
  EXPECT_EQ(hdr(kRetRing)->cons, 0u);
  EXPECT_EQ(nic_->pages_with_guest(), 3u);
  expect_books_exact();
  hdr(kRetRing)->prod = 2;  // the guest repairs it: the next batch takes both
  deliver(1, 8);
  EXPECT_EQ(m.pages_returned.get(), 2u);
  EXPECT_EQ(nic_->pages_with_guest(), 2u);
  expect_books_exact();
}

// A guest scribbling on ret_event loses doorbells of its own, nothing else: the device
// never reads it back, and still takes returns after each RX batch.
TEST_F(LnicRetEventTest, ScribbledRetEventChangesNothingTheDeviceDoes) {
  bring_up_acked(8);
  const auto cs = deliver(2, 8);
  hdr(kRetRing)->ret_event = 0xFFFFFFF0u;
  publish(returns_of(cs), 8);
  deliver(1, 8);
  EXPECT_EQ(nic_->metrics().pages_returned.get(), 2u);
  EXPECT_EQ(nic_->metrics().violations(), 0u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 2u + 2u);  // the device's own value again
  expect_books_exact();
}

// Old drivers (the freestanding guests, a Linux module before ABI v3's RET_EVENT) do not
// write DRIVER_FEATURES: nothing changes for them (passes with or without the feature).
TEST_F(LnicRetEventTest, WithoutTheFeatureReturnsWaitForTheDoorbellAndRetEventStaysZero) {
  bring_up(8);
  const auto cs = deliver(2, 8);
  publish(returns_of(cs), 8);
  deliver(1, 8);
  EXPECT_EQ(nic_->metrics().pages_returned.get(), 0u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 0u);
  nic_->on_return_doorbell();
  EXPECT_EQ(nic_->metrics().pages_returned.get(), 2u);
  EXPECT_EQ(hdr(kRetRing)->ret_event, 0u);
  expect_books_exact();
}

}  // namespace
}  // namespace labyrinth::devices::lnic::testing
