// The latency report carries its notes and span descriptions into the table and the JSON.
#include "vmm/report/latency_report.h"

#include <gtest/gtest.h>

#include <string>

#include "vmm/report/lnic_latency.h"

namespace labyrinth::vmm {
namespace {

TEST(LatencyReport, TableAndJsonCarryNotesAndSpanDescriptions) {
  LatencyReport r("lnic0");
  r.note("guest idle mode", idle_mode_note(std::nullopt));
  measure::Histogram h;
  h.record(100);
  r.add("alloc", alloc_span_description(40, 0, 1), h, 0);
  const std::string t = r.table();
  EXPECT_NE(t.find("  guest idle mode: not observed"), std::string::npos) << t;
  EXPECT_NE(t.find("  alloc: alloc_page(atomic|exclusive) call on the RX path, net of"),
            std::string::npos)
      << t;
  const auto j = r.json();
  EXPECT_EQ(std::string(j.at("notes").at("guest idle mode").as_string()),
            idle_mode_note(std::nullopt));
  EXPECT_EQ(std::string(j.at("spans").at("alloc").at("description").as_string()),
            alloc_span_description(40, 0, 1));
}

}  // namespace
}  // namespace labyrinth::vmm
