#include "vmm/report/start_trace.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

namespace labyrinth::vmm {

namespace {

double ms_between(StartTrace::Clock::time_point a, StartTrace::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void StartTrace::enable(double exec_ms, Clock::time_point now) {
  exec_ms_ = exec_ms;
  main_at_ = now;
  enabled_.store(true, std::memory_order_relaxed);
}

void StartTrace::mark(const char* phase, Clock::time_point now) {
  if (!enabled()) return;
  if (n_ == kMaxMarks) {
    ++dropped_;
    return;
  }
  marks_[n_++] = {.phase = phase, .at = now};
}

void StartTrace::mark_first_run(Clock::time_point now) {
  if (!enabled() || first_run_taken_.exchange(true, std::memory_order_relaxed)) return;
  first_run_at_ = now;
}

std::string StartTrace::table() const {
  if (!enabled()) return {};
  std::string out;
  char buf[160];
  auto line = [&](const char* phase, double ms, double total) {
    (void)std::snprintf(buf, sizeof buf, "labyrinth: start: %-28s %9.3f ms  (main + %9.3f ms)\n",
                        phase, ms, total);
    out += buf;
  };
  Clock::time_point prev = main_at_;
  for (size_t i = 0; i < n_; ++i) {
    line(marks_[i].phase, ms_between(prev, marks_[i].at), ms_between(main_at_, marks_[i].at));
    prev = marks_[i].at;
  }
  const bool ran = first_run_taken_.load(std::memory_order_relaxed);
  if (ran) {
    line("first KVM_RUN (vCPU thread)", ms_between(prev, first_run_at_),
         ms_between(main_at_, first_run_at_));
  }
  if (dropped_ > 0) {
    (void)std::snprintf(buf, sizeof buf, "labyrinth: start: %zu mark(s) dropped\n", dropped_);
    out += buf;
  }
  if (exec_ms_ >= 0) {
    (void)std::snprintf(buf, sizeof buf,
                        "labyrinth: start: exec -> main %.0f ms (+-10: /proc/self/stat ticks)",
                        exec_ms_);
    out += buf;
    if (ran) {
      (void)std::snprintf(buf, sizeof buf, ", exec -> first KVM_RUN %.0f ms",
                          exec_ms_ + ms_between(main_at_, first_run_at_));
      out += buf;
    }
    out += "\n";
  }
  return out;
}

StartTrace& start_trace() {
  static StartTrace trace;
  return trace;
}

double exec_to_now_ms() {
  std::ifstream in("/proc/self/stat");
  const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Field 2 (comm) may hold spaces and parentheses: the fields after it start after the
  // last ')'. starttime is field 22, the 20th after comm.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return -1;
  }
  const long ticks_per_s = sysconf(_SC_CLK_TCK);
  timespec now{};
  if (ticks_per_s <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0) return -1;
  const double start_ms = std::stod(field) * 1000.0 / static_cast<double>(ticks_per_s);
  const double now_ms =
      static_cast<double>(now.tv_sec) * 1000.0 + static_cast<double>(now.tv_nsec) / 1e6;
  return now_ms - start_ms;
}

}  // namespace labyrinth::vmm
