// CoalescedPio::replay on a ring laid out as KVM's (struct kvm_coalesced_mmio_ring in one
// page), filled here as KVM fills it: entries in order onto the bus, each once, the
// wrap at the ring's end, and indexes or entries KVM would never write left alone.
// That KVM queues the writes at all is checked on the real /dev/kvm in kvm_test.cc.
#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"
#include "vmm/kvm/coalesced_pio.h"

namespace labyrinth::vmm {
namespace {

// Every write it sees, in order, as (port offset, first byte, length).
struct WriteLog final : devices::BusDevice {
  struct Write {
    uint64_t offset;
    uint8_t first;
    size_t len;
  };
  std::vector<Write> writes;
  std::string_view label() const override { return "log"; }
  void read(uint64_t, std::span<uint8_t>) override {}
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, data[0], data.size()});
  }
};

struct Ring {
  alignas(4096) std::array<std::byte, 4096> page{};
  void set(uint32_t first, uint32_t last) {
    std::memcpy(page.data(), &first, 4);
    std::memcpy(page.data() + 4, &last, 4);
  }
  uint32_t first() const {
    uint32_t v = 0;
    std::memcpy(&v, page.data(), 4);
    return v;
  }
  void put(uint32_t slot, uint64_t port, std::span<const uint8_t> data, uint32_t pio = 1,
           uint32_t len = 0) {
    kvm_coalesced_mmio e{};
    e.phys_addr = port;
    e.len = len != 0 ? len : static_cast<uint32_t>(data.size());
    e.pio = pio;
    std::memcpy(e.data, data.data(), std::min(data.size(), sizeof e.data));
    std::memcpy(page.data() + 8 + slot * sizeof e, &e, sizeof e);
  }
};

TEST(CoalescedPio, CapacityIsKvms) {
  Ring ring;
  CoalescedPio c(ring.page);
  EXPECT_EQ(c.capacity(), (4096 - 8) / sizeof(kvm_coalesced_mmio));  // KVM_COALESCED_MMIO_MAX
}

TEST(CoalescedPio, ReplaysInOrderOnceAndFreesTheSlots) {
  Ring ring;
  CoalescedPio c(ring.page);
  devices::Bus pio("pio");
  auto pci = std::make_shared<devices::PciBus>();
  ASSERT_TRUE(pio.insert(pci, devices::PciBus::kBase, devices::PciBus::kLen));
  const uint8_t a[] = {0x00, 0x08, 0x00, 0x80}, b[] = {0x08, 0x00, 0x00, 0x80};
  ring.put(0, 0xCF8, a);
  ring.put(1, 0xCF8, b);  // the later address wins
  ring.set(0, 2);
  c.replay(pio);
  EXPECT_EQ(c.replayed(), 2u);
  EXPECT_EQ(ring.first(), 2u) << "both slots handed back to KVM";
  uint8_t got[4] = {};
  pio.read(0xCF8, got);
  EXPECT_EQ(0, std::memcmp(got, b, 4));
  pio.read(0xCFC, got);  // 00:00.0 offset 8: class 0x060000, revision 0
  EXPECT_EQ(got[3], 0x06);
  c.replay(pio);
  EXPECT_EQ(c.replayed(), 2u) << "nothing replayed twice";
}

TEST(CoalescedPio, WrapsAtTheRingsEnd) {
  Ring ring;
  CoalescedPio c(ring.page);
  devices::Bus pio("pio");
  auto log = std::make_shared<WriteLog>();
  ASSERT_TRUE(pio.insert(log, 0x70, 2));
  const uint32_t last_slot = c.capacity() - 1;
  const uint8_t x[] = {0x0A}, y[] = {0x0B}, z[] = {0x0C};
  ring.put(last_slot, 0x70, x);
  ring.put(0, 0x70, y);
  ring.put(1, 0x70, z);
  ring.set(last_slot, 2);
  c.replay(pio);
  ASSERT_EQ(log->writes.size(), 3u);
  EXPECT_EQ(log->writes[0].first, 0x0A);
  EXPECT_EQ(log->writes[1].first, 0x0B);
  EXPECT_EQ(log->writes[2].first, 0x0C);
  EXPECT_EQ(ring.first(), 2u);
}

TEST(CoalescedPio, LeavesWhatKvmWouldNotWrite) {
  Ring ring;
  CoalescedPio c(ring.page);
  devices::Bus pio("pio");
  auto log = std::make_shared<WriteLog>();
  ASSERT_TRUE(pio.insert(log, 0x70, 2));
  const uint8_t v[] = {0x01};
  ring.set(0, c.capacity());  // `last` past the ring: not KVM's
  c.replay(pio);
  EXPECT_TRUE(log->writes.empty());
  EXPECT_EQ(c.rejected(), 1u);
  EXPECT_EQ(ring.first(), 0u);

  ring.put(0, 0x70, v, /*pio=*/0);     // an MMIO entry: none registered
  ring.put(1, 0x70, v, 1, /*len=*/9);  // longer than data[]
  ring.put(2, 0x70, v, 1, /*len=*/1);
  ring.set(0, 3);
  c.replay(pio);
  ASSERT_EQ(log->writes.size(), 1u) << "only the well-formed entry";
  EXPECT_EQ(log->writes[0].len, 1u);
  EXPECT_EQ(c.rejected(), 3u);
  EXPECT_EQ(ring.first(), 3u) << "bad entries are consumed, not replayed";
}

}  // namespace
}  // namespace labyrinth::vmm
