// vmm/report/start_trace.h — `labyrinth run --trace-start`: what the VMM does before the
// guest's first instruction, phase by phase, on stderr once the VM has stopped.
//
//   StartTrace& t = start_trace();
//   t.enable(exec_to_now_ms());            // main(), before anything else
//   t.mark("config");                      // the setup thread, after each phase
//   t.mark_first_run();                    // a vCPU thread, just before its first KVM_RUN
//   std::fputs(t.table().c_str(), stderr); // after the VM stopped
//
// Marks are steady-clock readings; a mark while disabled costs one relaxed load. The
// setup marks come from one thread in order; the first-run mark may come from any vCPU
// thread (the first wins) and is only read after those threads were joined.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace labyrinth::vmm {

class StartTrace {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxMarks = 24;

  // exec_ms: the time from the process's exec to this call (exec_to_now_ms()), or a
  // negative number when unknown.
  void enable(double exec_ms, Clock::time_point now = Clock::now());
  [[nodiscard]] bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // The phase that ended now (a string literal: only its pointer is kept). Marks beyond
  // kMaxMarks are dropped and counted.
  void mark(const char* phase, Clock::time_point now = Clock::now());
  void mark_first_run(Clock::time_point now = Clock::now());

  // "labyrinth: start: ..." lines: each phase's duration and the running total since
  // main(), then exec -> main and exec -> first KVM_RUN. Empty while disabled.
  [[nodiscard]] std::string table() const;

 private:
  struct Mark {
    const char* phase = nullptr;
    Clock::time_point at;
  };
  std::atomic<bool> enabled_{false};
  double exec_ms_ = -1;
  Clock::time_point main_at_;
  std::array<Mark, kMaxMarks> marks_{};
  size_t n_ = 0;
  size_t dropped_ = 0;
  std::atomic<bool> first_run_taken_{false};
  Clock::time_point first_run_at_;
};

// The process-wide trace `labyrinth run` uses.
StartTrace& start_trace();

// The process's age from /proc/self/stat's starttime (clock ticks since boot, so a
// resolution of 1/CLK_TCK s, 10 ms on Debian) against CLOCK_BOOTTIME; negative when
// unreadable.
double exec_to_now_ms();

}  // namespace labyrinth::vmm
