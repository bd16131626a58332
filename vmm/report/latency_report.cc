#include "vmm/report/latency_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "allocator/measure/tsc.h"

namespace labyrinth::vmm {

namespace {

double us(uint64_t ticks) {
  return measure::TscClock::instance().to_ns(ticks) / 1000.0;
}

std::string fmt_us(double v) {
  char buf[32];
  const char* fmt = v < 10 ? "%.3f" : v < 1000 ? "%.1f" : "%.0f";
  (void)std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

const char* kColors[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02"};

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace

void LatencyReport::add(std::string name, std::string description, const measure::Histogram& ticks,
                        uint64_t drops) {
  spans_.push_back(Span{std::move(name), std::move(description), ticks, drops});
}

std::string LatencyReport::table() const {
  std::ostringstream o;
  o << title_ << "\n";
  for (const auto& [k, v] : notes_) o << "  " << k << ": " << v << "\n";
  char line[256];
  (void)std::snprintf(line, sizeof line, "%-10s %10s %9s %9s %9s %9s %9s %9s %9s %9s\n",
                      "span (us)", "count", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max",
                      "drops");
  o << line;
  for (const Span& s : spans_) {
    const auto& h = s.hist;
    (void)std::snprintf(line, sizeof line, "%-10s %10llu %9s %9s %9s %9s %9s %9s %9s %9llu\n",
                        s.name.c_str(), static_cast<unsigned long long>(h.count()),
                        fmt_us(us(h.min())).c_str(), fmt_us(us(h.percentile(50))).c_str(),
                        fmt_us(us(h.percentile(90))).c_str(), fmt_us(us(h.percentile(99))).c_str(),
                        fmt_us(us(h.percentile(99.9))).c_str(),
                        fmt_us(us(h.percentile(99.99))).c_str(), fmt_us(us(h.max())).c_str(),
                        static_cast<unsigned long long>(s.drops));
    o << line;
  }
  for (const Span& s : spans_) o << "  " << s.name << ": " << s.description << "\n";
  return o.str();
}

boost::json::object LatencyReport::json() const {
  boost::json::object root;
  root["title"] = title_;
  boost::json::object notes;
  for (const auto& [k, v] : notes_) notes[k] = v;
  root["notes"] = notes;
  root["unit"] = "us";
  root["tsc_khz"] = measure::TscClock::instance().khz();
  boost::json::object spans;
  for (const Span& s : spans_) {
    const auto& h = s.hist;
    boost::json::object j;
    j["description"] = s.description;
    j["count"] = h.count();
    j["drops"] = s.drops;
    j["min"] = us(h.min());
    j["mean"] = measure::TscClock::instance().to_ns(static_cast<uint64_t>(h.mean())) / 1000.0;
    j["p50"] = us(h.percentile(50));
    j["p90"] = us(h.percentile(90));
    j["p99"] = us(h.percentile(99));
    j["p99.9"] = us(h.percentile(99.9));
    j["p99.99"] = us(h.percentile(99.99));
    j["max"] = us(h.max());
    spans[s.name] = j;
  }
  root["spans"] = spans;
  return root;
}

bool LatencyReport::write_svg(const std::string& path) const {
  // Layout.
  const double W = 900, H = 560, left = 80, right = 200, top = 60, bottom = 70;
  const double pw = W - left - right, ph = H - top - bottom;
  // x: log10(1 / (1 - p/100)) from 0 (p0) to 5 (p99.999).
  const double xmax = 5;
  auto xpos = [&](double p) {
    const double x = std::log10(1.0 / std::max(1e-5, 1.0 - p / 100.0));
    return left + pw * std::min(x, xmax) / xmax;
  };
  // y: log10(us) across the data's range, whole decades.
  double lo = 1e9, hi = 0;
  for (const Span& s : spans_) {
    if (s.hist.count() == 0) continue;
    lo = std::min(lo, std::max(us(s.hist.min()), 0.001));
    hi = std::max(hi, std::max(us(s.hist.max()), 0.001));
  }
  if (hi == 0) {
    lo = 0.01;
    hi = 100;
  }
  const double dlo = std::floor(std::log10(lo)), dhi = std::ceil(std::log10(hi) + 1e-9);
  auto ypos = [&](double v) {  // values below the lowest decade (e.g. 0) sit on the axis
    const double l = std::log10(std::max(v, 1e-6));
    const double y = top + ph * (1.0 - (l - dlo) / std::max(dhi - dlo, 1.0));
    return std::clamp(y, top, top + ph);
  };

  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
    << "' font-family='sans-serif' font-size='12'>\n";
  o << "<rect width='100%' height='100%' fill='white'/>\n";
  o << "<text x='" << left << "' y='28' font-size='16' font-weight='bold'>" << xml_escape(title_)
    << "</text>\n";
  std::string host;
  for (const auto& [k, v] : notes_) {
    if (k == "host") host = "; host: " + v;
  }
  o << "<text x='" << left << "' y='46' fill='#555'>latency by percentile (log scales); "
    << "each line is one span" << xml_escape(host) << "</text>\n";
  // Grid: decades on y, percentiles on x.
  for (int decade = static_cast<int>(dlo); decade <= static_cast<int>(dhi); ++decade) {
    const double d = decade;
    const double y = ypos(std::pow(10.0, d));
    o << "<line x1='" << left << "' x2='" << left + pw << "' y1='" << y << "' y2='" << y
      << "' stroke='#ddd'/>\n";
    o << "<text x='" << left - 8 << "' y='" << y + 4 << "' text-anchor='end'>"
      << fmt_us(std::pow(10.0, d)) << " us</text>\n";
  }
  const double ticks[] = {0, 90, 99, 99.9, 99.99, 99.999};
  const char* labels[] = {"p0", "p90", "p99", "p99.9", "p99.99", "p99.999"};
  for (int i = 0; i < 6; ++i) {
    const double x = xpos(ticks[i]);
    o << "<line x1='" << x << "' x2='" << x << "' y1='" << top << "' y2='" << top + ph
      << "' stroke='#ddd'/>\n";
    o << "<text x='" << x << "' y='" << top + ph + 18 << "' text-anchor='middle'>" << labels[i]
      << "</text>\n";
  }
  o << "<text x='" << left + pw / 2 << "' y='" << H - 20
    << "' text-anchor='middle'>percentile</text>\n";
  o << "<rect x='" << left << "' y='" << top << "' width='" << pw << "' height='" << ph
    << "' fill='none' stroke='#333'/>\n";
  // One polyline per span, sampled densely in percentile space.
  int k = 0;
  for (const Span& s : spans_) {
    const char* color = kColors[k % 6];
    if (s.hist.count() > 0) {
      o << "<polyline fill='none' stroke='" << color << "' stroke-width='2' points='";
      for (int i = 0; i <= 500; ++i) {
        const double x = xmax * i / 500.0;
        const double p = 100.0 * (1.0 - std::pow(10.0, -x));
        if (p > 100.0 * (1.0 - 1.0 / static_cast<double>(s.hist.count()))) break;  // no data past
        o << xpos(p) << "," << ypos(us(s.hist.percentile(p))) << " ";
      }
      o << "'/>\n";
    }
    const double ly = top + 10 + 40.0 * k;
    o << "<line x1='" << left + pw + 15 << "' x2='" << left + pw + 35 << "' y1='" << ly << "' y2='"
      << ly << "' stroke='" << color << "' stroke-width='3'/>\n";
    o << "<text x='" << left + pw + 40 << "' y='" << ly + 4 << "'>" << xml_escape(s.name)
      << "</text>\n";
    o << "<text x='" << left + pw + 40 << "' y='" << ly + 18 << "' fill='#555' font-size='10'>p50 "
      << fmt_us(us(s.hist.percentile(50))) << " us, n=" << s.hist.count() << "</text>\n";
    ++k;
  }
  o << "</svg>\n";
  std::ofstream f(path);
  f << o.str();
  return static_cast<bool>(f);
}

}  // namespace labyrinth::vmm
