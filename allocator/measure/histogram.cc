#include "allocator/measure/histogram.h"

#include <algorithm>
#include <cmath>

namespace labyrinth::measure {

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  if (p <= 0) return min();
  if (p >= 100) return max_;
  // Nearest-rank definition: the smallest value with at least p% of samples <= it.
  const auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= std::max<uint64_t>(rank, 1)) {
      const uint64_t mid = bucket_low(b) + (bucket_width(b) - 1) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

void Histogram::merge(const Histogram& other) {
  for (size_t b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::reset() {
  *this = Histogram();
}

}  // namespace labyrinth::measure
