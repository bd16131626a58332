// tests/fuzz/recording_sink.h — a MemslotSink that maps nothing and checks every call.
//
// The fuzz targets run the real PagePool without a VM: chunks stay host memory only.
// The sink records each map() and asserts what the pool promises its sink: chunk-sized,
// page-aligned ranges inside the pool window that never overlap a live mapping, and
// unmap() only of live tokens. live() is 0 once the pool is destroyed.
#pragma once

#include <cstdint>
#include <expected>
#include <map>

#include "allocator/memslot_sink.h"
#include "tests/fuzz/fuzz_check.h"

namespace labyrinth::fuzz {

class RecordingSink final : public alloc::MemslotSink {
 public:
  RecordingSink(uint64_t window_gpa, uint64_t window_size)
      : lo_(window_gpa), hi_(window_gpa + window_size) {}

  std::expected<uint32_t, alloc::Error> map(uint64_t gpa, void* host, uint64_t size) override {
    FUZZ_CHECK(host != nullptr && size != 0 && gpa % 4096 == 0 && size % 4096 == 0,
               "map(%#llx, %p, %#llx)", static_cast<unsigned long long>(gpa), host,
               static_cast<unsigned long long>(size));
    FUZZ_CHECK(gpa >= lo_ && gpa + size <= hi_, "map outside the pool window");
    for (const auto& [token, m] : live_) {
      FUZZ_CHECK(gpa + size <= m.gpa || m.gpa + m.size <= gpa, "map overlaps slot %u", token);
    }
    live_[next_] = {gpa, size};
    return next_++;
  }
  std::expected<void, alloc::Error> unmap(uint32_t slot) override {
    FUZZ_CHECK(live_.erase(slot) == 1, "unmap of unknown slot %u", slot);
    return {};
  }
  size_t live() const { return live_.size(); }

 private:
  struct Mapping {
    uint64_t gpa, size;
  };
  uint64_t lo_, hi_;
  uint32_t next_ = 1;
  std::map<uint32_t, Mapping> live_;
};

}  // namespace labyrinth::fuzz
