// Shared pieces of the lnic_* test guests: command-line options every one of them
// takes, NIC bring-up with clear failure messages, and a small log-linear
// histogram for guest-side latency summaries.
//
//   guest::Cmdline args = guest::Cmdline::from_boot_info(info);
//   if (!lnic_app::enter_cpl(who, args, /*poll=*/true)) return guest::kExitFail;  // CPL 3
//   guest::LnicOptions opts = lnic_app::driver_options(args, /*poll=*/true);
//   if (!lnic_app::start(who, nic, info, args, opts, on_frame, &state)) return guest::kExitFail;
//
// Driver keys (all optional): nic=<index> rx=<entries> ret=<entries> tx=<entries>
// tx_buffers=<n> ret_batch=<returns per doorbell> budget=<completions per irq>
// log=<DEVICE BUG lines per kind> busy=0|1 (account handler/poll time; costs an
// RDTSC exit per interrupt) cpl=3|0 (run the program at CPL 3 or stay at CPL 0;
// default 3 in poll mode, 0 in interrupt mode, see enter_cpl()).
#pragma once

#include <stdint.h>

#include "guest/drivers/lnic/lnic.h"
#include "guest/runtime/cmdline.h"
#include "guest/runtime/lapic.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/tick.h"
#include "guest/runtime/tsc.h"
#include "guest/runtime/user.h"

namespace lnic_app {

inline constexpr const char* kDriverKeys[] = {"nic",       "rx",     "ret", "tx",   "tx_buffers",
                                              "ret_batch", "budget", "log", "busy", "cpl"};

// Drops to CPL 3 (guest/runtime/user.h) if cpl=3, or by default when `poll`.
// Call first thing on CPU 0: everything the lnic guests do after boot (cmdline,
// MMIO, driver, printf, the loops) works at CPL 3, and only CPL 3 runs natively
// on the nested host. Interrupt mode defaults to CPL 0: the driver's handler
// consumes the ring at CPL 0 either way, and under load (>= ~20k frames/s) its
// back-to-back MSIs starve a CPL-3 main loop, which then never sees its limits.
inline bool enter_cpl(const char* who, guest::Cmdline& args, bool poll) {
  const char* const kCpl[] = {"3", "0"};
  if (args.choice("cpl", kCpl, poll ? 0 : 1) != 0) return true;
  if (guest::enter_user_mode()) return true;
  guest::printf("%s: FAIL: cannot enter CPL 3 on cpu %u\n", who, guest::this_cpu());
  return false;
}

inline guest::LnicOptions driver_options(guest::Cmdline& args, bool poll) {
  guest::LnicOptions o;
  o.rx_entries = static_cast<uint32_t>(args.u64("rx", o.rx_entries));
  o.ret_entries = static_cast<uint32_t>(args.u64("ret", o.ret_entries));
  o.tx_entries = static_cast<uint32_t>(args.u64("tx", o.tx_entries));
  o.tx_buffers = static_cast<uint32_t>(args.u64("tx_buffers", o.tx_buffers));
  o.ret_doorbell_batch = static_cast<uint32_t>(args.u64("ret_batch", o.ret_doorbell_batch));
  o.rx_budget = static_cast<uint32_t>(args.u64("budget", o.rx_budget));
  o.log_limit = static_cast<uint32_t>(args.u64("log", o.log_limit));
  o.account_busy = args.flag("busy", o.account_busy);
  o.poll = poll;
  return o;
}

// Checks that every key is known (program keys + kDriverKeys) and parsed.
template <size_t N>
bool check_args(const char* who, guest::Cmdline& args, const char* const (&program_keys)[N]) {
  const char* all[N + sizeof(kDriverKeys) / sizeof(kDriverKeys[0])];
  size_t n = 0;
  for (const char* k : program_keys) all[n++] = k;
  for (const char* k : kDriverKeys) all[n++] = k;
  args.check_known(all, n);
  if (!args.ok()) {
    guest::printf("%s: FAIL: %s\n", who, args.error());
    return false;
  }
  return true;
}

// Probes and brings up NIC `nic=` (default 0). Prints why on failure.
inline bool start(const char* who, guest::Lnic& nic, const labyrinth_boot_info& info,
                  guest::Cmdline& args, const guest::LnicOptions& opts,
                  guest::LnicRxCallback callback, void* context) {
  const uint32_t count = guest::Lnic::count(info);
  const uint32_t index = static_cast<uint32_t>(args.u64("nic", 0));
  if (count == 0) {
    guest::printf("%s: FAIL: no lnic found (no PCI function %04x:%04x on bus 0)\n", who,
                  LNIC_PCI_VENDOR, LNIC_PCI_DEVICE);
    return false;
  }
  guest::lapic_enable();
  const guest::LnicError e = nic.init(info, index, opts, callback, context);
  if (e != guest::LnicError::kNone) {
    guest::printf("%s: FAIL: lnic%u (of %u): %s\n", who, index, count, guest::to_string(e));
    return false;
  }
  const uint8_t* m = nic.mac();
  guest::printf(
      "%s: lnic%u up: mac %02x:%02x:%02x:%02x:%02x:%02x features 0x%x vector 0x%x "
      "apic %u rings rx=%u ret=%u tx=%u mode=%s ret_batch=%u pool 0x%lx+0x%lx cpl %u\n",
      who, index, m[0], m[1], m[2], m[3], m[4], m[5], nic.features(), nic.vector(),
      guest::lapic_id(), opts.rx_entries, opts.ret_entries, opts.tx_entries,
      opts.poll ? "poll" : "irq", opts.ret_doorbell_batch, nic.pool_base(), nic.pool_size(),
      guest::cpl());
  return true;
}

// How long a sink/echo run may go on: frames (0 = no limit), idle_ms without a
// frame, wait_ms for the first frame, seconds in total (0 = no limit).
struct RunLimits {
  uint64_t frames, idle_ms, wait_ms, seconds;
};

// Checks RunLimits without reading the TSC more than needed: RDTSC traps on the
// nested host, so loops call frames_done() every time and check() (one RDTSC)
// only now and then.
class RunClock {
 public:
  explicit RunClock(const RunLimits& lim)
      : lim_(lim), start_(guest::rdtsc()), last_change_(start_) {}
  bool frames_done(uint64_t frames) const { return lim_.frames != 0 && frames >= lim_.frames; }
  // Why the run ends ("frames", "time", "no traffic", "idle"), or nullptr.
  const char* check(uint64_t frames) {
    if (frames_done(frames)) return "frames";
    const uint64_t now = guest::rdtsc();
    const uint64_t khz = guest::tsc_khz();
    if (frames != last_frames_) {
      last_frames_ = frames;
      last_change_ = now;
    }
    if (lim_.seconds != 0 && now - start_ >= lim_.seconds * 1000 * khz) return "time";
    if (frames == 0 && now - start_ >= lim_.wait_ms * khz) return "no traffic";
    if (frames != 0 && now - last_change_ >= lim_.idle_ms * khz) return "idle";
    return nullptr;
  }
  uint64_t start() const { return start_; }

 private:
  RunLimits lim_;
  uint64_t start_;
  uint64_t last_change_;
  uint64_t last_frames_ = 0;
};

inline RunLimits run_limits(guest::Cmdline& args) {
  return RunLimits{args.u64("frames", 0), args.u64("idle_ms", 2000), args.u64("wait_ms", 10000),
                   args.u64("seconds", 0)};
}

// The keys a streaming guest (lnic_sink, lnic_echo) reads first: mode=irq|poll,
// which decides the CPL it drops to (enter_cpl()), its run limits and batch=.
struct StreamArgs {
  bool poll;
  RunLimits limits;
  uint32_t batch;  // completions per poll() call
};
inline bool stream_args(const char* who, guest::Cmdline& args, StreamArgs* out) {
  const char* const kModes[] = {"irq", "poll"};
  out->poll = args.choice("mode", kModes, 0) == 1;
  if (!enter_cpl(who, args, out->poll)) return false;
  out->limits = run_limits(args);
  out->batch = static_cast<uint32_t>(args.u64("batch", 64));
  return true;
}

// Log-linear histogram of uint64 values: 8 sub-buckets per power of two
// (<= 12.5% bucket width). Enough for guest-side sanity summaries; the host's
// `labyrinth latency` has the precise ones.
class Histogram {
 public:
  void add(uint64_t v) {
    ++buckets_[bucket(v)];
    ++count_;
    if (count_ == 1 || v < min_) min_ = v;
    if (v > max_) max_ = v;
    sum_ += v;
  }
  uint64_t count() const { return count_; }
  uint64_t min() const { return min_; }
  uint64_t max() const { return max_; }
  uint64_t mean() const { return count_ != 0 ? sum_ / count_ : 0; }
  // Upper bound of the bucket holding the q-th (per mille) value.
  uint64_t percentile_permille(uint32_t q) const {
    if (count_ == 0) return 0;
    const uint64_t rank = (count_ * q + 999) / 1000;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < kBuckets; ++b) {
      seen += buckets_[b];
      if (seen >= (rank != 0 ? rank : 1)) {
        const uint64_t hi = upper(b);
        return hi < max_ ? hi : max_;
      }
    }
    return max_;
  }

 private:
  static constexpr uint32_t kSub = 8;
  static constexpr uint32_t kBuckets = 64 * kSub;
  static uint32_t bucket(uint64_t v) {
    if (v < kSub) return static_cast<uint32_t>(v);
    const uint32_t msb = 63 - static_cast<uint32_t>(__builtin_clzll(v));
    const uint32_t sub = static_cast<uint32_t>((v >> (msb - 3)) & (kSub - 1));
    return msb * kSub + sub;
  }
  static uint64_t upper(uint32_t b) {
    if (b < kSub) return b;
    const uint32_t msb = b / kSub, sub = b % kSub;
    const uint64_t base = uint64_t{1} << msb;
    const uint64_t step = base / kSub;
    return base + (sub + 1) * step - 1;
  }
  uint64_t buckets_[kBuckets] = {};
  uint64_t count_ = 0, min_ = 0, max_ = 0, sum_ = 0;
};

// Prints "name: n=.. min=.. p50=.. p90=.. p99=.. p99.9=.. max=.. ns" for TSC ticks.
inline void print_histogram_ns(const char* who, const char* name, const Histogram& h) {
  const auto ns = [](uint64_t ticks) { return ticks * 1000000 / guest::tsc_khz(); };
  if (h.count() == 0) {
    guest::printf("%s: %s: no samples\n", who, name);
    return;
  }
  guest::printf("%s: %s: n=%lu min=%lu p50=%lu p90=%lu p99=%lu p99.9=%lu max=%lu mean=%lu ns\n",
                who, name, h.count(), ns(h.min()), ns(h.percentile_permille(500)),
                ns(h.percentile_permille(900)), ns(h.percentile_permille(990)),
                ns(h.percentile_permille(999)), ns(h.max()), ns(h.mean()));
}

}  // namespace lnic_app
