#include "vmm/report/metrics.h"

#include <fstream>

#include <boost/json/serialize.hpp>

namespace labyrinth::vmm {

namespace virtio = devices::virtio;

boost::json::object pool_metrics_json(const alloc::PoolStats& p) {
  return boost::json::object{{"chunks", p.chunks},
                             {"chunks_high_water", p.chunks_high_water},
                             {"total_pages", p.total_pages},
                             {"free_clean", p.free_clean},
                             {"free_dirty", p.free_dirty},
                             {"in_use", p.in_use},
                             {"alloc_cache", p.alloc_cache},
                             {"alloc_depot", p.alloc_depot},
                             {"alloc_reserve", p.alloc_reserve},
                             {"alloc_wait", p.alloc_wait},
                             {"fail_exhausted", p.fail_exhausted},
                             {"frees", p.frees},
                             {"transfers", p.transfers},
                             {"violations", p.violations()},
                             {"pages_zeroed", p.pages_zeroed},
                             {"grow_on_failure", p.grow_on_failure},
                             {"chunks_added", p.chunks_added},
                             {"chunks_removed", p.chunks_removed},
                             {"below_low_events", p.below_low_events},
                             {"below_min_events", p.below_min_events}};
}

boost::json::object lnic_metrics_json(const LnicReading& nic) {
  const devices::lnic::LnicMetrics& m = *nic.metrics;
  const devices::lnic::BackendStats& b = nic.backend_stats;
  boost::json::object j;
  j["id"] = nic.id;
  j["backend"] = nic.backend.name;
  j["rx_frames"] = m.rx_frames.get();
  j["rx_bytes"] = m.rx_bytes.get();
  // The generator's overruns are frames lost before the device saw them: an RX drop too.
  j["rx_drops"] = boost::json::object{
      {"no_page", m.rx_drop_no_page.get()},         {"ring_full", m.rx_drop_ring_full.get()},
      {"not_running", m.rx_drop_not_running.get()}, {"oversize", m.rx_drop_oversize.get()},
      {"bad_ring", m.rx_drop_bad_ring.get()},       {"generator_overrun", b.overrun},
      {"test_hostile", m.rx_drop_hostile.get()}};
  j["tx_frames"] = m.tx_frames.get();
  j["tx_bytes"] = m.tx_bytes.get();
  j["tx_drops"] = m.tx_drop_backend.get();
  j["irqs"] = m.irqs.get();
  j["tx_irqs"] = m.tx_irqs.get();
  j["controls"] = boost::json::object{
      {"enables", m.enables.get()}, {"resets", m.resets.get()}, {"rx_stops", m.rx_stops.get()}};
  j["pages_returned"] = m.pages_returned.get();
  j["pages_returned_unrung"] = m.pages_returned_unrung.get();
  j["ret_event_now"] = m.ret_event_now.get();
  j["guest_samples_early"] = m.guest_stamp_early.get();
  j["alloc_timer_ticks"] = nic.alloc_timer_ticks;
  j["alloc_samples_net_zero"] = m.alloc_net_zero.get();
  j["floor"] = boost::json::object{{"sent", m.floor_sent.get()},
                                   {"missed", m.floor_missed.get()},
                                   {"early", m.floor_early.get()}};
  j["pages_with_guest"] = nic.pages_with_guest;
  j["test_hostile_written"] = m.hostile_written.get();
  j["doorbells"] =
      boost::json::object{{"return", m.ret_doorbells.get()}, {"tx", m.tx_doorbells.get()}};
  j["violations"] = boost::json::object{{"bad_address", m.viol_bad_address.get()},
                                        {"not_owner", m.viol_not_owner.get()},
                                        {"double_return", m.viol_double_free.get()},
                                        {"stale", m.viol_stale.get()},
                                        {"bad_index", m.viol_bad_index.get()},
                                        {"bad_tx_descriptor", m.viol_bad_tx.get()},
                                        {"bad_register_access", m.mmio_bad_access.get()},
                                        {"rejected_config", m.config_errors.get()},
                                        {"ignored_control", m.ignored_controls.get()},
                                        {"bad_bar_access", m.msix_bad_access.get()},
                                        {"rejected_msix_message", m.msix_rejects.get()}};
  // Only a generator has these: other backends leave the key out rather than write zeros.
  if (b.generated != 0) {
    j["pktgen"] = boost::json::object{
        {"generated", b.generated}, {"overrun", b.overrun}, {"max_lateness_ns", b.max_lateness_ns}};
  }
  return j;
}

LatencyReport virtio_net_host_rx(const VirtioNetReading& net, std::string title) {
  LatencyReport r(std::move(title));
  // Frames the guest's buffers could not take are the span's drops.
  r.add("host_rx", "frame read from the TAP -> used ring written and MSI irqfd signalled",
        net.latency->host_rx,
        net.metrics->rx_drop_too_small.get() + net.metrics->rx_drop_oversize.get());
  return r;
}

boost::json::object virtio_net_metrics_json(const VirtioNetReading& net) {
  const virtio::NetMetrics& m = *net.metrics;
  const virtio::TransportMetrics& t = *net.transport;
  // Malformed chains by reason, named; index 0 is no error and unnamed slots stay out.
  boost::json::object bad;
  for (size_t e = 1; e < m.bad_chains.size(); ++e) {
    const std::string_view name = virtio::to_string(static_cast<virtio::QueueError>(e));
    if (name != "unknown queue error") bad[name] = m.bad_chains[e].get();
  }
  return boost::json::object{
      {"iface_id", net.id},
      {"host_dev_name", net.tap_name},
      {"rx_frames", m.rx_frames.get()},
      {"rx_bytes", m.rx_bytes.get()},
      {"rx_drops", boost::json::object{{"buffer_too_small", m.rx_drop_too_small.get()},
                                       {"oversize", m.rx_drop_oversize.get()}}},
      {"rx_waits_for_buffers", m.rx_waits.get()},
      {"tx_frames", m.tx_frames.get()},
      {"tx_bytes", m.tx_bytes.get()},
      {"tx_drops", boost::json::object{{"backend", m.tx_drop_backend.get()},
                                       {"malformed", m.tx_drop_malformed.get()}}},
      {"irqs", m.irqs.get()},
      {"kicks", boost::json::object{{"rx", m.kicks_rx.get()}, {"tx", m.kicks_tx.get()}}},
      {"malformed_chains", m.bad_chains_total()},
      {"malformed_by_reason", std::move(bad)},
      {"needs_reset", m.needs_reset.get()},
      {"transport", boost::json::object{{"bad_register_access", t.bad_access.load()},
                                        {"features_rejected", t.feature_rejects.load()},
                                        {"queues_rejected", t.queue_rejects.load()},
                                        {"msi_rejected", t.msi_rejects.load()},
                                        {"status_writes_rejected", t.status_rejects.load()},
                                        {"activations", t.activations.load()},
                                        {"resets", t.resets.load()}}},
      // The span in the latency report's own JSON form, so both NICs read alike.
      {"latency", virtio_net_host_rx(net, "virtio-net " + net.id).json()}};
}

boost::json::object metrics_json(const alloc::PoolStats& pool, std::span<const LnicReading> lnics,
                                 std::span<const VirtioNetReading> nets) {
  boost::json::array l, v;
  for (const LnicReading& nic : lnics) l.push_back(lnic_metrics_json(nic));
  for (const VirtioNetReading& net : nets) v.push_back(virtio_net_metrics_json(net));
  return boost::json::object{
      {"pool", pool_metrics_json(pool)}, {"lnics", std::move(l)}, {"virtio_net", std::move(v)}};
}

bool write_json(const std::string& path, const boost::json::object& j) {
  std::ofstream out(path);
  out << boost::json::serialize(j) << "\n";
  return static_cast<bool>(out);
}

}  // namespace labyrinth::vmm
