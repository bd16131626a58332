// The lnic's test-only hostile mode (LnicConfig::test_hostile, docs/lnic.md "The hostile
// device"): what it writes into the RX ring for each kind, one kind per activation, and
// that the host's books stay exact through all of it — no page is ever given to two
// owners, whatever the ring says. The Linux driver's side is tests/vmm/linux_lnic_test.cc.
#include <cstring>
#include <vector>

#include "tests/devices/lnic/lnic_fixture.h"

namespace labyrinth::devices::lnic::testing {
namespace {

std::vector<uint8_t> frame_of(size_t n) {
  return std::vector<uint8_t>(n, 0x3C);
}

class LnicHostileTest : public LnicTest {
 protected:
  void SetUp() override {
    hostile_ = {HostileKind::bad_address, HostileKind::bad_length, HostileKind::page_twice,
                HostileKind::rx_prod_beyond_ring};
    make_pool(/*chunks=*/1, /*max=*/1);
  }
  // RESET as a driver does it, then fresh (zeroed) rings and ENABLE.
  void reset_and_bring_up() {
    wr(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
    run_loop();
    ASSERT_EQ(rd(LNIC_REG_STATUS), 0u);
    for (uint64_t ring : {kRxRing, kRetRing, kTxRing}) {
      std::memset(ram_.at<std::byte>(ring), 0, 0x1000);
    }
    bring_up();
  }
  uint64_t window_size() const { return pool_->config().window_size; }
};

TEST_F(LnicHostileTest, EachKindIsWrittenOnceAndTheBooksStayExact) {
  const LnicMetrics& m = nic_->metrics();

  // 1: bad_address — the real completion, then three naming no page of the pool.
  bring_up();
  send(frame_of(100));
  nic_->flush();
  ASSERT_EQ(hdr(kRxRing)->prod, 4u);
  EXPECT_EQ(completion(0)->len, 100u);
  EXPECT_EQ(completion(1)->page_gpa, kWindow - alloc::kPageSize);
  EXPECT_EQ(completion(2)->page_gpa, kWindow + alloc::kPageSize / 2);
  EXPECT_EQ(completion(3)->page_gpa, kWindow + window_size());
  EXPECT_EQ(completion(1)->seq, 1u);  // the seq the next real frame gets
  EXPECT_EQ(nic_->pages_with_guest(), 1u);
  EXPECT_EQ(pool_->stats().in_use, 1u);
  EXPECT_EQ(m.hostile_written.get(), 3u);
  consume_rx(4);
  return_pages({completion(0)->page_gpa});
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  send(frame_of(64));  // once per activation: the next frame is a plain one
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 5u);
  EXPECT_EQ(completion(4)->seq, 1u);
  consume_rx(5);
  return_pages({completion(4)->page_gpa});

  // 2: bad_length — two real deliveries of their own pages, with lengths 0 and too long.
  ASSERT_NO_FATAL_FAILURE(reset_and_bring_up());
  send(frame_of(100));
  nic_->flush();
  ASSERT_EQ(hdr(kRxRing)->prod, 3u);
  EXPECT_EQ(completion(1)->len, 0u);
  EXPECT_EQ(completion(2)->len, LNIC_FRAME_MAX + 1u);
  EXPECT_EQ(completion(1)->seq, completion(0)->seq + 1);
  EXPECT_EQ(completion(2)->seq, completion(0)->seq + 2);
  EXPECT_NE(completion(1)->page_gpa, completion(0)->page_gpa);
  EXPECT_NE(completion(2)->page_gpa, completion(1)->page_gpa);
  EXPECT_EQ(nic_->pages_with_guest(), 3u);
  EXPECT_EQ(pool_->stats().in_use, 3u);
  consume_rx(3);
  return_pages({completion(0)->page_gpa, completion(1)->page_gpa, completion(2)->page_gpa});
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(m.violations(), 0u);

  // 3: page_twice — the real completion and its copy, published together: one page
  // allocated and handed over once. A driver that returns it twice is refused the second
  // time (a counted double return) and the pool never sees two owners.
  ASSERT_NO_FATAL_FAILURE(reset_and_bring_up());
  send(frame_of(100));
  nic_->flush();
  ASSERT_EQ(hdr(kRxRing)->prod, 2u);
  EXPECT_EQ(std::memcmp(completion(0), completion(1), sizeof(lnic_rx_completion)), 0);
  EXPECT_EQ(nic_->pages_with_guest(), 1u);
  EXPECT_EQ(pool_->stats().in_use, 1u);
  consume_rx(2);
  const lnic_return r{completion(0)->page_gpa, 0, completion(0)->seq, 0};
  return_entries({r, r});
  EXPECT_EQ(m.viol_double_free.get(), 1u);
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(pool_->stats().in_use, 0u);
  EXPECT_EQ(pool_->stats().violations(), 0u);

  // 4: rx_prod_beyond_ring — prod a ring and one ahead, no page, at ENABLE itself (it
  // needs no frame: it lands while a driver's open is still running); then the device
  // plays dead (every frame dropped, counted) until the guest resets it.
  const int irqs = msi_.triggers.load();
  ASSERT_NO_FATAL_FAILURE(reset_and_bring_up());
  EXPECT_EQ(hdr(kRxRing)->prod, 8u + 1u) << "written at activation, before any frame";
  EXPECT_EQ(msi_.triggers.load(), irqs + 1);
  send(frame_of(100));
  nic_->flush();
  send(frame_of(100));
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 8u + 1u);
  EXPECT_EQ(msi_.triggers.load(), irqs + 1);
  EXPECT_EQ(m.rx_drop_hostile.get(), 2u);
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(pool_->stats().in_use, 0u);

  // 5: a correct device again.
  ASSERT_NO_FATAL_FAILURE(reset_and_bring_up());
  send(frame_of(100));
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 1u);
  consume_rx(1);
  return_pages({completion(0)->page_gpa});
  EXPECT_EQ(m.hostile_written.get(), 3u + 2u + 1u + 1u);
  EXPECT_EQ(m.pages_returned.get(), 2u + 3u + 1u + 1u);
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(pool_->stats().in_use, 0u);
  EXPECT_EQ(pool_->stats().violations(), 0u);
  EXPECT_EQ(m.violations(), 1u);  // the double return of step 3, nothing else
}

// Hostile entries wait until the guest has consumed every completion and given back
// every page: the driver then sees them in one poll, and no page of the device's is
// left in a ring that a driver in its broken state stops reading.
TEST_F(LnicHostileTest, WaitsUntilTheGuestHoldsNothing) {
  bring_up();  // activation 1: bad_address
  send(frame_of(64));
  nic_->flush();
  ASSERT_EQ(hdr(kRxRing)->prod, 4u);
  const uint64_t held = completion(0)->page_gpa;  // consumed, not returned
  consume_rx(4);
  ASSERT_NO_FATAL_FAILURE(reset_and_bring_up());  // activation 2: bad_length, armed
  EXPECT_EQ(nic_->pages_with_guest(), 1u);
  send(frame_of(64));  // the guest holds a page: a plain frame
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 1u);
  send(frame_of(64));  // and an unconsumed completion: plain again
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 2u);
  consume_rx(2);
  return_entries({lnic_return{held, 0, 0, 0}, lnic_return{completion(0)->page_gpa, 0, 1, 0},
                  lnic_return{completion(1)->page_gpa, 0, 2, 0}});
  EXPECT_EQ(nic_->pages_with_guest(), 0u);
  EXPECT_EQ(nic_->metrics().hostile_written.get(), 3u);
  send(frame_of(64));  // nothing held, nothing unconsumed: now
  nic_->flush();
  EXPECT_EQ(hdr(kRxRing)->prod, 5u);
  EXPECT_EQ(nic_->metrics().hostile_written.get(), 3u + 2u);
  EXPECT_EQ(nic_->metrics().violations(), 0u);
}

}  // namespace
}  // namespace labyrinth::devices::lnic::testing
