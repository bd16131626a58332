// guest/drivers/lnic/lnic_ring.h on the host: ring index arithmetic (including
// uint32 wrap-around), checks of device-written completions, the MSI message,
// the pktgen frame check and page-ownership bookkeeping.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "guest/drivers/lnic/lnic_ring.h"

namespace {

using namespace guest::lnic;

TEST(LnicRing, SizeValidity) {
  EXPECT_TRUE(ring_size_valid(LNIC_RING_MIN));
  EXPECT_TRUE(ring_size_valid(1024));
  EXPECT_TRUE(ring_size_valid(LNIC_RING_MAX));
  EXPECT_FALSE(ring_size_valid(0));
  EXPECT_FALSE(ring_size_valid(4));
  EXPECT_FALSE(ring_size_valid(100));
  EXPECT_FALSE(ring_size_valid(2 * LNIC_RING_MAX));
  EXPECT_FALSE(ring_size_valid(0x80000000u));
}

TEST(LnicRing, IndexMathAcrossUint32Wrap) {
  const uint32_t size = 1024;
  const uint32_t cons = 0xFFFFFFF0u;
  const uint32_t prod = cons + 40;  // wrapped to 24
  EXPECT_EQ(prod, 24u);
  EXPECT_EQ(ring_used(prod, cons), 40u);
  EXPECT_EQ(ring_free(prod, cons, size), 984u);
  EXPECT_TRUE(ring_distance_ok(prod, cons, size));
  EXPECT_EQ(ring_slot(cons, size), 0x3F0u);
  EXPECT_EQ(ring_slot(prod, size), 24u);
  EXPECT_TRUE(ring_distance_ok(cons + size, cons, size));       // exactly full
  EXPECT_FALSE(ring_distance_ok(cons + size + 1, cons, size));  // beyond
  EXPECT_FALSE(ring_distance_ok(cons - 1, cons, size));         // prod behind cons
  EXPECT_TRUE(ring_distance_ok(cons, cons, size));              // empty
}

TEST(LnicRing, ConsAdvance) {
  EXPECT_TRUE(cons_advance_ok(10, 10, 20));
  EXPECT_TRUE(cons_advance_ok(10, 20, 20));
  EXPECT_FALSE(cons_advance_ok(10, 21, 20));        // past prod
  EXPECT_FALSE(cons_advance_ok(10, 9, 20));         // backwards
  EXPECT_TRUE(cons_advance_ok(0xFFFFFFFEu, 3, 5));  // across the wrap
  EXPECT_FALSE(cons_advance_ok(0xFFFFFFFEu, 6, 5));
}

TEST(LnicRing, RingBytesArePagesAndFitTheHeader) {
  EXPECT_EQ(ring_bytes(8, sizeof(lnic_return)), 4096u);
  EXPECT_EQ(ring_bytes(1024, sizeof(lnic_rx_completion)), 68u * 1024);  // 128 + 64 KiB
  EXPECT_EQ(ring_bytes(4096, sizeof(lnic_rx_completion)), 260u * 1024);
  EXPECT_EQ(ring_bytes(124, sizeof(lnic_return)), 4096u);  // 128 + 3968 exactly
  EXPECT_EQ(ring_bytes(125, sizeof(lnic_return)), 8192u);
}

TEST(LnicRing, HeaderLayoutMatchesTheAbi) {
  EXPECT_EQ(offsetof(lnic_ring_header, prod), 0u);
  EXPECT_EQ(offsetof(lnic_ring_header, flags), 4u);
  EXPECT_EQ(offsetof(lnic_ring_header, floor_t_sent), 8u);
  EXPECT_EQ(offsetof(lnic_ring_header, floor_guest_tsc), 16u);
  EXPECT_EQ(offsetof(lnic_ring_header, cons), 64u);  // its own cache line
  EXPECT_EQ(offsetof(lnic_pktgen_header, ethertype), 12u);
  EXPECT_EQ(offsetof(lnic_pktgen_header, seq), 16u);
  EXPECT_EQ(offsetof(lnic_pktgen_header, t_sched), 24u);
  EXPECT_EQ(offsetof(lnic_pktgen_header, pattern), 32u);
}

TEST(LnicRing, MsiMessage) {
  EXPECT_EQ(msi_address_lo(0), 0xFEE00000u);
  EXPECT_EQ(msi_address_lo(3), 0xFEE03000u);
  EXPECT_EQ(msi_address_lo(255), 0xFEEFF000u);
  EXPECT_EQ(msi_data(0x40), 0x40u);  // fixed delivery, edge: only the vector
}

TEST(LnicRing, CompletionChecks) {
  const uint64_t base = 0x100000000ull, size = 32ull << 20;
  EXPECT_EQ(check_completion(base, 60, 0, base, size), CompletionError::kNone);
  EXPECT_EQ(check_completion(base + size - 4096, LNIC_FRAME_MAX, 0, base, size),
            CompletionError::kNone);
  EXPECT_EQ(check_completion(base + size, 60, 0, base, size), CompletionError::kPageOutsidePool);
  EXPECT_EQ(check_completion(base - 4096, 60, 0, base, size), CompletionError::kPageOutsidePool);
  EXPECT_EQ(check_completion(base + 8, 60, 0, base, size), CompletionError::kPageMisaligned);
  EXPECT_EQ(check_completion(base, 0, 0, base, size), CompletionError::kLenZero);
  EXPECT_EQ(check_completion(base, LNIC_FRAME_MAX + 1, 0, base, size), CompletionError::kLenTooBig);
  EXPECT_EQ(check_completion(base, 60, 1, base, size), CompletionError::kFlagsNonZero);
  // A window at the top of the address space: no overflow in the bound check.
  const uint64_t top = ~0ull - (1ull << 20) + 1;
  EXPECT_EQ(check_completion(top + 4096, 60, 0, top, 1ull << 20), CompletionError::kNone);
  EXPECT_EQ(check_completion(0, 60, 0, top, 1ull << 20), CompletionError::kPageOutsidePool);
  EXPECT_TRUE(completion_page_usable(CompletionError::kLenTooBig));
  EXPECT_FALSE(completion_page_usable(CompletionError::kPageOutsidePool));
  EXPECT_FALSE(completion_page_usable(CompletionError::kPageMisaligned));
}

std::vector<uint8_t> frame(uint32_t len, uint64_t seq, uint8_t pattern, bool et_net,
                           bool magic_net = true) {
  std::vector<uint8_t> f(len);
  const uint8_t mac[6] = {0x52, 0x54, 0, 0x12, 0x34, 0x56};
  fill_pktgen(f.data(), len, mac, seq, pattern, et_net, magic_net);
  return f;
}

TEST(LnicPktgen, AcceptsWellFormedFramesInEitherByteOrder) {
  for (bool et_net : {true, false}) {
    for (bool magic_net : {true, false}) {
      for (uint32_t len : {40u, 41u, 47u, 48u, 60u, 1514u, 4096u}) {
        auto f = frame(len, 77, 0xF9, et_net, magic_net);  // pattern near 255: bytes wrap
        const PktgenResult r = check_pktgen(f.data(), len);
        EXPECT_EQ(r.status, PktgenStatus::kOk) << len << " " << et_net << magic_net;
        EXPECT_EQ(r.seq, 77u);
        EXPECT_EQ(r.ethertype_network, et_net);
        EXPECT_EQ(r.magic_network, magic_net);
        EXPECT_EQ(r.pattern, 0xF9);
      }
    }
  }
}

TEST(LnicPktgen, FindsTheFirstBadByteAnywhere) {
  for (uint32_t off = 40; off < 300; ++off) {
    auto f = frame(300, 1, static_cast<uint8_t>(off), true);
    f[off] ^= 0x01;
    const PktgenResult r = check_pktgen(f.data(), 300);
    ASSERT_EQ(r.status, PktgenStatus::kBadPattern) << off;
    EXPECT_EQ(r.bad_offset, off);
  }
}

TEST(LnicPktgen, RejectsBadHeaders) {
  auto f = frame(100, 1, 0, true);
  EXPECT_EQ(check_pktgen(f.data(), 39).status, PktgenStatus::kTooShort);
  auto g = f;
  g[12] = 0x08;
  g[13] = 0x00;  // IPv4
  EXPECT_EQ(check_pktgen(g.data(), 100).status, PktgenStatus::kBadEthertype);
  auto h = f;
  h[14] ^= 0xFF;
  EXPECT_EQ(check_pktgen(h.data(), 100).status, PktgenStatus::kBadMagic);
  auto m = f;
  m[14] = 'L';
  m[15] = 'L';
  EXPECT_EQ(check_pktgen(m.data(), 100).status, PktgenStatus::kBadMagic);
}

TEST(LnicPktgen, NetworkOrderSpellsLB) {
  auto f = frame(40, 0, 0, true);
  EXPECT_EQ(f[12], 0x88);
  EXPECT_EQ(f[13], 0xB5);
  EXPECT_EQ(f[14], 'L');
  EXPECT_EQ(f[15], 'B');
}

TEST(LnicSeq, GapsAndOutOfOrder) {
  SeqTracker t;
  EXPECT_TRUE(t.observe(0));
  EXPECT_TRUE(t.observe(1));
  EXPECT_TRUE(t.observe(5));  // 2,3,4 dropped
  EXPECT_EQ(t.gaps, 3u);
  EXPECT_EQ(t.gap_events, 1u);
  EXPECT_FALSE(t.observe(4));  // late
  EXPECT_FALSE(t.observe(5));  // duplicate
  EXPECT_EQ(t.out_of_order, 2u);
  EXPECT_TRUE(t.observe(6));
  EXPECT_EQ(t.seen, 6u);
  SeqTracker late_start;
  EXPECT_TRUE(late_start.observe(100));  // generator ran before we were ready
  EXPECT_EQ(late_start.gaps, 100u);
}

TEST(LnicOwnership, TakeGiveAndUntracked) {
  std::vector<uint64_t> bits(2, 0);  // 128 pages
  const uint64_t base = 0x40000000;
  PageOwnership o(bits.data(), bits.size(), base, 1ull << 30);
  EXPECT_TRUE(o.take(base));
  EXPECT_FALSE(o.take(base));  // twice
  EXPECT_TRUE(o.owns(base));
  EXPECT_TRUE(o.take(base + 127 * 4096));
  EXPECT_EQ(o.owned(), 2u);
  EXPECT_TRUE(o.give(base));
  EXPECT_FALSE(o.give(base));  // not owned any more
  EXPECT_FALSE(o.give(base + 4096));
  EXPECT_EQ(o.owned(), 1u);
  // Beyond the bitmap's 128 pages: accepted but not tracked.
  EXPECT_FALSE(o.tracked(base + 128 * 4096));
  EXPECT_TRUE(o.take(base + 128 * 4096));
  EXPECT_TRUE(o.take(base + 128 * 4096));
  EXPECT_EQ(o.untracked(), 2u);
  // A small window limits the tracked range to the window.
  PageOwnership small(bits.data(), bits.size(), base, 8 * 4096);
  EXPECT_FALSE(small.tracked(base + 8 * 4096));
}

}  // namespace
