// tests/devices/virtio/fake_ram.h — guest RAM for device tests: one region at a base.
#pragma once

#include <cstring>
#include <vector>

#include "devices/guest_ram.h"

namespace labyrinth::devices::test {

class FakeRam final : public GuestRam {
 public:
  FakeRam(uint64_t base, size_t size) : base_(base), bytes_(size) {}
  std::optional<std::span<std::byte>> translate(uint64_t gpa, uint64_t len) const override {
    if (gpa < base_ || len > bytes_.size() || gpa - base_ > bytes_.size() - len) {
      return std::nullopt;
    }
    return std::span(const_cast<std::byte*>(bytes_.data()) + (gpa - base_), len);
  }
  template <class T>
  void put(uint64_t gpa, const T& v) {
    std::memcpy(bytes_.data() + (gpa - base_), &v, sizeof v);
  }
  template <class T>
  T get(uint64_t gpa) const {
    T v;
    std::memcpy(&v, bytes_.data() + (gpa - base_), sizeof v);
    return v;
  }
  uint64_t base() const { return base_; }
  uint64_t end() const { return base_ + bytes_.size(); }

 private:
  uint64_t base_;
  std::vector<std::byte> bytes_;
};

}  // namespace labyrinth::devices::test
