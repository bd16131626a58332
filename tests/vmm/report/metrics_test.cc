// The metrics JSON (`--metrics`, and `latency --json`'s "metrics"): key for key what
// scripts and tests read, from counters set by hand.
#include "vmm/report/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <boost/json/serialize.hpp>

namespace labyrinth::vmm {
namespace {

namespace virtio = devices::virtio;

TEST(MetricsJson, Pool) {
  alloc::PoolStats p;
  p.chunks = 2;
  p.chunks_high_water = 3;
  p.total_pages = 1024;
  p.free_clean = 500;
  p.free_dirty = 4;
  p.in_use = 520;
  p.alloc_cache = 9000;
  p.alloc_depot = 70;
  p.alloc_reserve = 6;
  p.alloc_wait = 5;
  p.fail_exhausted = 1;
  p.frees = 8480;
  p.transfers = 16000;
  p.violation_stale = 2;
  p.violation_not_owner = 1;
  p.pages_zeroed = 8400;
  p.grow_on_failure = 1;
  p.chunks_added = 2;
  p.chunks_removed = 1;
  p.below_low_events = 3;
  p.below_min_events = 1;
  EXPECT_EQ(boost::json::serialize(pool_metrics_json(p)),
            R"j({"chunks":2,"chunks_high_water":3,"total_pages":1024,"free_clean":500,)j"
            R"j("free_dirty":4,"in_use":520,"alloc_cache":9000,"alloc_depot":70,)j"
            R"j("alloc_reserve":6,"alloc_wait":5,"fail_exhausted":1,"frees":8480,)j"
            R"j("transfers":16000,"violations":3,"pages_zeroed":8400,"grow_on_failure":1,)j"
            R"j("chunks_added":2,"chunks_removed":1,"below_low_events":3,"below_min_events":1})j");
}

struct LnicFixture {
  devices::lnic::LnicMetrics m;
  devices::lnic::LnicLatency lat;
  LnicReading reading(devices::lnic::BackendStats b) const {
    return LnicReading{.id = "lnic0",
                       .backend = {.name = "pktgen", .pktgen = true, .rate_pps = 1000},
                       .backend_stats = b,
                       .metrics = &m,
                       .latency = &lat,
                       .alloc_timer_ticks = 40,
                       .pages_with_guest = 2};
  }
};

TEST(MetricsJson, LnicWithAGenerator) {
  LnicFixture f;
  f.m.rx_frames.inc(5);
  f.m.rx_bytes.inc(320);
  f.m.rx_drop_no_page.inc(2);
  f.m.rx_drop_ring_full.inc(1);
  f.m.rx_drop_bad_ring.inc(3);
  f.m.tx_frames.inc(1);
  f.m.tx_bytes.inc(60);
  f.m.tx_drop_backend.inc(4);
  f.m.irqs.inc(7);
  f.m.pages_returned.inc(3);
  f.m.guest_stamp_early.inc(1);
  f.m.alloc_net_zero.inc(11);
  f.m.floor_sent.inc(12);
  f.m.floor_missed.inc(13);
  f.m.floor_early.inc(14);
  f.m.ret_doorbells.inc(15);
  f.m.tx_doorbells.inc(16);
  f.m.viol_double_free.inc(17);
  f.m.viol_stale.inc(18);
  f.m.viol_bad_tx.inc(19);
  f.m.mmio_bad_access.inc(20);
  f.m.config_errors.inc(21);
  f.m.tx_irqs.inc(22);
  f.m.enables.inc(23);
  f.m.resets.inc(24);
  f.m.rx_stops.inc(25);
  f.m.ignored_controls.inc(26);
  f.m.msix_bad_access.inc(27);
  f.m.msix_rejects.inc(28);
  f.m.rx_drop_hostile.inc(29);
  f.m.hostile_written.inc(30);
  f.m.pages_returned_unrung.inc(31);
  f.m.ret_event_now.inc(32);
  EXPECT_EQ(
      boost::json::serialize(lnic_metrics_json(
          f.reading({.generated = 7, .overrun = 1, .rx_errors = 99, .max_lateness_ns = 900}))),
      R"j({"id":"lnic0","backend":"pktgen","rx_frames":5,"rx_bytes":320,)j"
      R"j("rx_drops":{"no_page":2,"ring_full":1,"not_running":0,"oversize":0,"bad_ring":3,)j"
      R"j("generator_overrun":1,"test_hostile":29},"tx_frames":1,"tx_bytes":60,"tx_drops":4,)j"
      R"j("irqs":7,)j"
      R"j("tx_irqs":22,"controls":{"enables":23,"resets":24,"rx_stops":25},)j"
      R"j("pages_returned":3,"pages_returned_unrung":31,"ret_event_now":32,)j"
      R"j("guest_samples_early":1,"alloc_timer_ticks":40,)j"
      R"j("alloc_samples_net_zero":11,"floor":{"sent":12,"missed":13,"early":14},)j"
      R"j("pages_with_guest":2,"test_hostile_written":30,"doorbells":{"return":15,"tx":16},)j"
      R"j("violations":{"bad_address":0,"not_owner":0,"double_return":17,"stale":18,)j"
      R"j("bad_index":0,"bad_tx_descriptor":19,"bad_register_access":20,"rejected_config":21,)j"
      R"j("ignored_control":26,"bad_bar_access":27,"rejected_msix_message":28},)j"
      R"j("pktgen":{"generated":7,"overrun":1,"max_lateness_ns":900}})j");
}

TEST(MetricsJson, LnicWithoutGeneratedFramesHasNoPktgenKey) {
  LnicFixture f;
  const auto j = lnic_metrics_json(f.reading({}));
  EXPECT_FALSE(j.contains("pktgen"));
  EXPECT_EQ(j.at("rx_drops").at("generator_overrun").as_uint64(), 0u);
}

TEST(MetricsJson, VirtioNet) {
  virtio::NetMetrics m;
  virtio::NetLatency lat;
  virtio::TransportMetrics t;
  m.rx_frames.inc(10);
  m.rx_bytes.inc(1500);
  m.rx_drop_too_small.inc(1);
  m.rx_drop_oversize.inc(2);
  m.rx_waits.inc(3);
  m.tx_frames.inc(4);
  m.tx_bytes.inc(400);
  m.tx_drop_backend.inc(5);
  m.tx_drop_malformed.inc(6);
  m.irqs.inc(7);
  m.kicks_rx.inc(8);
  m.kicks_tx.inc(9);
  m.needs_reset.inc(1);
  m.bad_chains[static_cast<size_t>(virtio::QueueError::bad_head)].inc(2);
  m.bad_chains[static_cast<size_t>(virtio::QueueError::indirect)].inc(1);
  m.bad_chains[15].inc(100);  // no QueueError has this value: counted, not named
  t.bad_access = 1;
  t.feature_rejects = 2;
  t.queue_rejects = 3;
  t.msi_rejects = 4;
  t.status_rejects = 5;
  t.activations = 6;
  t.resets = 7;
  lat.host_rx.record(1000);
  const VirtioNetReading r{
      .id = "eth0", .tap_name = "tap0", .metrics = &m, .latency = &lat, .transport = &t};
  boost::json::object j = virtio_net_metrics_json(r);
  // The span is the latency report's (its microseconds depend on the TSC calibration).
  const auto& latency = j.at("latency").as_object();
  EXPECT_EQ(latency.at("title").as_string(), "virtio-net eth0");
  EXPECT_EQ(latency.at("spans").at("host_rx").at("count").as_uint64(), 1u);
  EXPECT_EQ(latency.at("spans").at("host_rx").at("drops").as_uint64(), 3u);
  j.erase("latency");
  EXPECT_EQ(
      boost::json::serialize(j),
      R"j({"iface_id":"eth0","host_dev_name":"tap0","rx_frames":10,"rx_bytes":1500,)j"
      R"j("rx_drops":{"buffer_too_small":1,"oversize":2},"rx_waits_for_buffers":3,)j"
      R"j("tx_frames":4,"tx_bytes":400,"tx_drops":{"backend":5,"malformed":6},"irqs":7,)j"
      R"j("kicks":{"rx":8,"tx":9},"malformed_chains":103,"malformed_by_reason":{)j"
      R"j("queue size is 0, not a power of two or too large":0,)j"
      R"j("a ring address is misaligned":0,"a ring is outside guest RAM":0,)j"
      R"j("avail.idx is more than a queue ahead":0,"head index out of range":2,)j"
      R"j("next index out of range":0,"chain longer than the queue (a loop)":0,)j"
      R"j("buffer outside guest RAM":0,"zero-length buffer":0,)j"
      R"j("readable buffer after a writable one":0,")j" +
          std::string(virtio::to_string(virtio::QueueError::indirect)) +
          R"j(":1},"needs_reset":1,)j"
          R"j("transport":{"bad_register_access":1,"features_rejected":2,"queues_rejected":3,)j"
          R"j("msi_rejected":4,"status_writes_rejected":5,"activations":6,"resets":7}})j");
}

TEST(MetricsJson, RootHoldsPoolLnicsAndVirtioNetInThatOrder) {
  LnicFixture f;
  const std::vector<LnicReading> lnics{f.reading({}), f.reading({})};
  const auto j = metrics_json(alloc::PoolStats{}, lnics, {});
  std::vector<std::string> keys;
  for (const auto& kv : j) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"pool", "lnics", "virtio_net"}));
  EXPECT_EQ(j.at("lnics").as_array().size(), 2u);
  EXPECT_EQ(j.at("lnics").as_array()[1].as_object(), lnic_metrics_json(f.reading({})));
  EXPECT_TRUE(j.at("virtio_net").as_array().empty());
  EXPECT_EQ(j.at("pool").as_object(), pool_metrics_json(alloc::PoolStats{}));
}

}  // namespace
}  // namespace labyrinth::vmm
