// vmm/report/latency_report.h — turns latency histograms into what people read.
//
//   LatencyReport r("lnic0, pktgen 10 kpps, guest halted (hlt) between interrupts");
//   r.add("alloc", nic.latency().alloc, 0);          // histograms in TSC ticks
//   r.add("host_rx", nic.latency().host_rx, drops);
//   std::cout << r.table();                          // count min p50 ... max drops (µs)
//   r.json();                                        // boost::json::object
//   r.write_svg("latency.svg");                      // percentile plot
//
// Percentiles are read from the log-linear histograms (<= 0.4% bucket error); values
// are converted with the calibrated TSC rate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "allocator/measure/histogram.h"

namespace labyrinth::vmm {

class LatencyReport {
 public:
  struct Span {
    std::string name;
    std::string description;
    measure::Histogram hist;  // ticks
    uint64_t drops = 0;
  };

  explicit LatencyReport(std::string title) : title_(std::move(title)) {}
  void add(std::string name, std::string description, const measure::Histogram& ticks,
           uint64_t drops);
  void note(std::string key, std::string value) {
    notes_.emplace_back(std::move(key), std::move(value));
  }

  std::string table() const;
  boost::json::object json() const;
  // An SVG percentile plot (x: percentile on a 1/(1-p) scale, y: latency, log scale).
  bool write_svg(const std::string& path) const;
  const std::vector<Span>& spans() const { return spans_; }

 private:
  std::string title_;
  std::vector<Span> spans_;
  std::vector<std::pair<std::string, std::string>> notes_;
};

}  // namespace labyrinth::vmm
