// allocator/measure/histogram.h — log-linear latency histogram (HdrHistogram-style).
//
//   Histogram h;                 // ~58 KiB of counters, allocated with the object
//   h.record(ticks);             // O(1), no allocation, no syscall: safe on the atomic path
//   h.percentile(99.9);          // value within 0.4% of the true order statistic
//   h.record_elapsed(starts, rdtsc());  // a batch: end - start for each start stamp
//
// Values below 128 get a bucket each; above, every power-of-two range [2^k, 2^(k+1))
// is split into 128 equal buckets, so a bucket's width is at most 1/128 (0.78%) of
// its lower bound; reporting the bucket midpoint bounds the relative error by 0.39%.
// One writer per histogram; merge() combines per-thread histograms afterwards.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>

namespace labyrinth::measure {

class Histogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  void record(uint64_t v) noexcept { record_n(v, 1); }
  void record_n(uint64_t v, uint64_t n) noexcept {
    counts_[bucket_of(v)] += n;
    count_ += n;
    sum_ += v * n;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  // One sample per start stamp: the time from it to end, the batch's one closing stamp.
  // A start after end records 0 (stamps taken on two CPUs whose TSCs disagree by a
  // few ticks), so the sample is counted rather than wrapped to a huge value.
  void record_elapsed(std::span<const uint64_t> starts, uint64_t end) noexcept {
    for (const uint64_t start : starts) record(end > start ? end - start : 0);
  }

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
  }
  // The value at percentile p in [0, 100] (bucket midpoint, clamped to [min, max]).
  uint64_t percentile(double p) const;
  void merge(const Histogram& other);
  void reset();

  // Bucket arithmetic, public for tests and plots.
  static constexpr size_t bucket_of(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - kSubBits;
    return static_cast<size_t>((shift + 1) * kSub + ((v >> shift) - kSub));
  }
  static constexpr uint64_t bucket_low(size_t b) {
    const size_t group = b / kSub;
    if (group == 0) return b;
    return (kSub + b % kSub) << (group - 1);
  }
  static constexpr uint64_t bucket_width(size_t b) {
    const size_t group = b / kSub;
    return group == 0 ? 1 : uint64_t{1} << (group - 1);
  }
  uint64_t bucket_count(size_t b) const { return counts_[b]; }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace labyrinth::measure
