#include "devices/bus/bus.h"

#include <gtest/gtest.h>

#include <array>
#include <thread>
#include <vector>

namespace labyrinth::devices {
namespace {

// Remembers the last access; reads return offset + i in each byte.
class Probe final : public BusDevice {
 public:
  explicit Probe(std::string name) : name_(std::move(name)) {}
  std::string_view label() const override { return name_; }
  void read(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(offset + i);
    reads.fetch_add(1);
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    last_offset = offset;
    last_size = data.size();
    writes.fetch_add(1);
  }
  std::string name_;
  std::atomic<int> reads{0}, writes{0};
  std::atomic<uint64_t> last_offset{0};
  std::atomic<size_t> last_size{0};
};

class Silent final : public BusDevice {
 public:
  std::string_view label() const override { return "silent"; }
};

TEST(Bus, RejectsOverlappingInserts) {
  Bus bus("test");
  ASSERT_TRUE(bus.insert(std::make_shared<Probe>("a"), 0x100, 0x10));
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("b"), 0x100, 1).error(), Error::overlap);
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("b"), 0x10F, 1).error(), Error::overlap);
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("b"), 0xF0, 0x11).error(), Error::overlap);
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("b"), 0x0, 0x1000).error(), Error::overlap);
  EXPECT_TRUE(bus.insert(std::make_shared<Probe>("b"), 0x110, 0x10));  // adjacent is fine
  EXPECT_TRUE(bus.insert(std::make_shared<Probe>("c"), 0xF0, 0x10));
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("d"), 0x200, 0).error(), Error::empty_range);
  EXPECT_EQ(bus.insert(std::make_shared<Probe>("d"), UINT64_MAX, 2).error(), Error::overflow);
  EXPECT_TRUE(bus.insert(std::make_shared<Probe>("e"), UINT64_MAX, 1));  // last byte
}

TEST(Bus, UnmappedReadsAreAllOnesAndCounted) {
  Bus bus("test");
  ASSERT_TRUE(bus.insert(std::make_shared<Probe>("a"), 0x100, 4));
  std::array<uint8_t, 4> data{};
  EXPECT_FALSE(bus.read(0x200, data));
  for (uint8_t b : data) EXPECT_EQ(b, 0xFF);
  // An access that runs past the device's end is unmapped too.
  EXPECT_FALSE(bus.read(0x102, data));
  for (uint8_t b : data) EXPECT_EQ(b, 0xFF);
  const std::array<uint8_t, 1> one{1};
  EXPECT_FALSE(bus.write(0x50, one));
  EXPECT_EQ(bus.unmapped_accesses(), 3u);
}

TEST(Bus, DispatchesWithOffsetAndWidth) {
  Bus bus("test");
  auto a = std::make_shared<Probe>("a");
  auto b = std::make_shared<Probe>("b");
  ASSERT_TRUE(bus.insert(a, 0x3F8, 8));
  ASSERT_TRUE(bus.insert(b, 0xD0000000, 0x1000));
  std::array<uint8_t, 2> two{};
  EXPECT_TRUE(bus.read(0x3FA, two));
  EXPECT_EQ(two[0], 2);
  EXPECT_EQ(two[1], 3);
  const std::array<uint8_t, 4> four{1, 2, 3, 4};
  EXPECT_TRUE(bus.write(0xD0000010, four));
  EXPECT_EQ(b->last_offset.load(), 0x10u);
  EXPECT_EQ(b->last_size.load(), 4u);
  EXPECT_EQ(a->writes.load(), 0);
  EXPECT_EQ(bus.unmapped_accesses(), 0u);
}

TEST(Bus, DefaultDeviceReadsZeroAndIgnoresWrites) {
  Bus bus("test");
  ASSERT_TRUE(bus.insert(std::make_shared<Silent>(), 0x80, 1));
  std::array<uint8_t, 1> v{0x55};
  EXPECT_TRUE(bus.read(0x80, v));
  EXPECT_EQ(v[0], 0);
  EXPECT_TRUE(bus.write(0x80, v));
}

TEST(Bus, ConcurrentDispatch) {
  Bus bus("test");
  auto a = std::make_shared<Probe>("a");
  ASSERT_TRUE(bus.insert(a, 0x10, 8));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::array<uint8_t, 1> v{};
      for (int i = 0; i < 10000; ++i) {
        bus.read(0x10 + (i % 8), v);
        bus.write(0x10, v);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(a->reads.load(), 40000);
  EXPECT_EQ(a->writes.load(), 40000);
}

}  // namespace
}  // namespace labyrinth::devices
