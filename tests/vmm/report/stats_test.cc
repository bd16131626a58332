// `labyrinth run --stats`: the key=value line scripts read, and its /proc parsing.
#include "vmm/report/stats.h"

#include <gtest/gtest.h>

#include <string>

namespace labyrinth::vmm {
namespace {

TEST(Stats, ParsesTheKernelsStatusFile) {
  const ProcMemory m = parse_proc_status(
      "Name:\tlabyrinth\n"
      "VmPeak:\t  123456 kB\n"
      "VmHWM:\t    9100 kB\n"
      "VmRSS:\t    7980 kB\n"
      "RssAnon:\t    2048 kB\n"
      "RssFile:\t    5932 kB\n"
      "RssShmem:\t       0 kB\n");
  EXPECT_EQ(m.rss_kib, 7980u);
  EXPECT_EQ(m.hwm_kib, 9100u);
  EXPECT_EQ(m.anon_kib, 2048u);
  EXPECT_EQ(m.file_kib, 5932u);
  const ProcMemory none = parse_proc_status("Name:\tx\n");  // a kernel without the fields
  EXPECT_EQ(none.rss_kib, 0u);
  EXPECT_EQ(none.file_kib, 0u);
}

TEST(Stats, ReadsThisProcess) {
  EXPECT_GT(read_proc_memory().rss_kib, 0u);
}

TEST(Stats, LineNamesEveryFigureAndTheOverheads) {
  const VmStats s{.proc = {.rss_kib = 8000, .hwm_kib = 9000, .anon_kib = 3000, .file_kib = 5000},
                  .guest_touched_kib = 600,
                  .pool_pinned_kib = 2048,
                  .vcpu_exits = 42,
                  .serial_bytes = 27,
                  .pio_unmapped = 3,
                  .pio_absent = 67};
  EXPECT_EQ(stats_line(s),
            "labyrinth: stats: vm_rss_kib=8000 vm_hwm_kib=9000 rss_anon_kib=3000 "
            "rss_file_kib=5000 guest_touched_kib=600 pool_pinned_kib=2048 "
            "vmm_overhead_kib=5352 vmm_anon_overhead_kib=352 vcpu_exits=42 serial_bytes=27 "
            "pio_unmapped=3 pio_absent=67\n");
}

TEST(Stats, OverheadsNeverGoBelowZero) {
  // Pinned memory VmRSS does not count (hugetlbfs chunks) can make guest + pool larger
  // than VmRSS: the overhead is then 0, not a wrapped number.
  const VmStats s{.proc = {.rss_kib = 1000, .anon_kib = 500},
                  .guest_touched_kib = 800,
                  .pool_pinned_kib = 2048};
  const std::string line = stats_line(s);
  EXPECT_NE(line.find(" vmm_overhead_kib=0 vmm_anon_overhead_kib=0 "), std::string::npos) << line;
}

TEST(Stats, VirtioNetTables) {
  devices::virtio::NetMetrics m;
  devices::virtio::NetLatency lat;
  devices::virtio::TransportMetrics t;
  m.rx_drop_too_small.inc(1);
  m.rx_drop_oversize.inc(2);
  const VirtioNetReading r{
      .id = "eth0", .tap_name = "tap0", .metrics = &m, .latency = &lat, .transport = &t};
  const VirtioNetReading two[] = {r, r};
  const std::string one =
      "virtio-net eth0 (TAP tap0)\n"
      "span (us)       count       min       p50       p90       p99     p99.9    p99.99       "
      "max     drops\n"
      "host_rx             0     0.000     0.000     0.000     0.000     0.000     0.000     "
      "0.000         3\n"
      "  host_rx: frame read from the TAP -> used ring written and MSI irqfd signalled\n";
  EXPECT_EQ(virtio_net_tables(two), one + one);
  EXPECT_EQ(virtio_net_tables({}), "");
}

}  // namespace
}  // namespace labyrinth::vmm
