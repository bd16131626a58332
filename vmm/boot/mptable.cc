#include "vmm/boot/mptable.h"

#include <cstring>
#include <numeric>
#include <span>

#include "guest/abi/boot_info.h"

namespace labyrinth::vmm {

namespace {

constexpr size_t kFloatingBytes = 16;
constexpr uint8_t kEntryProcessor = 0, kEntryBus = 1, kEntryIoapic = 2, kEntryIoInt = 3,
                  kEntryLocalInt = 4;
constexpr uint8_t kIntTypeInt = 0, kIntTypeNmi = 1, kIntTypeExtInt = 3;
constexpr uint8_t kCpuEnabled = 0x01, kCpuBootstrap = 0x02;
constexpr uint32_t kCpuSignature = (6u << 8) | (1u << 4) | 3u;  // family 6, as Firecracker
constexpr uint32_t kCpuFeatures = (1u << 9) | (1u << 0);        // APIC, FPU

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  template <class T>
  void put(T v) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  void bytes(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) put<uint8_t>(static_cast<uint8_t>(s[i]));
  }

 private:
  std::vector<std::byte>& out_;
};

uint8_t checksum(std::span<const std::byte> b) {
  const unsigned sum = std::accumulate(b.begin(), b.end(), 0u, [](unsigned acc, std::byte x) {
    return acc + std::to_integer<unsigned>(x);
  });
  return static_cast<uint8_t>(0x100 - (sum & 0xFF));
}

}  // namespace

std::vector<std::byte> make_mptable(uint64_t gpa, uint32_t num_cpus) {
  std::vector<std::byte> t;
  Writer w(t);
  const uint32_t table_gpa = static_cast<uint32_t>(gpa + kFloatingBytes);
  // Floating pointer: "_MP_", table address, length 1 (x16), spec 1.4, checksum, features 0.
  w.bytes("_MP_", 4);
  w.put<uint32_t>(table_gpa);
  w.put<uint8_t>(1);
  w.put<uint8_t>(4);
  w.put<uint8_t>(0);  // checksum, below
  for (int i = 0; i < 5; ++i) w.put<uint8_t>(0);
  // Configuration table header; length, entry count and checksum filled in at the end.
  w.bytes("PCMP", 4);
  w.put<uint16_t>(0);  // base table length
  w.put<uint8_t>(4);   // spec 1.4
  w.put<uint8_t>(0);   // checksum
  w.bytes("LABYRNTH", 8);
  w.bytes("KVM VMM     ", 12);
  w.put<uint32_t>(0);  // no OEM table
  w.put<uint16_t>(0);
  w.put<uint16_t>(0);  // entry count
  w.put<uint32_t>(static_cast<uint32_t>(LABYRINTH_LAPIC_GPA));
  w.put<uint16_t>(0);  // no extended table
  w.put<uint8_t>(0);
  w.put<uint8_t>(0);
  uint16_t entries = 0;
  for (uint32_t i = 0; i < num_cpus; ++i, ++entries) {
    w.put<uint8_t>(kEntryProcessor);
    w.put<uint8_t>(static_cast<uint8_t>(i));  // LAPIC ID = vCPU index (cpuid.cc)
    w.put<uint8_t>(kMpLapicVersion);
    w.put<uint8_t>(kCpuEnabled | (i == 0 ? kCpuBootstrap : 0));
    w.put<uint32_t>(kCpuSignature);
    w.put<uint32_t>(kCpuFeatures);
    w.put<uint64_t>(0);
  }
  const auto bus = [&](uint8_t id, const char* type) {
    w.put<uint8_t>(kEntryBus);
    w.put<uint8_t>(id);
    w.bytes(type, 6);
    ++entries;
  };
  bus(kMpBusPci, "PCI   ");
  bus(kMpBusIsa, "ISA   ");
  const auto ioapic_id = static_cast<uint8_t>(num_cpus + 1);
  w.put<uint8_t>(kEntryIoapic);
  w.put<uint8_t>(ioapic_id);
  w.put<uint8_t>(kMpIoapicVersion);
  w.put<uint8_t>(1);  // enabled
  w.put<uint32_t>(static_cast<uint32_t>(LABYRINTH_IOAPIC_GPA));
  ++entries;
  for (uint32_t irq = 0; irq < kMpIsaIrqs; ++irq, ++entries) {
    w.put<uint8_t>(kEntryIoInt);
    w.put<uint8_t>(kIntTypeInt);
    w.put<uint16_t>(0);  // polarity and trigger conform to the ISA bus: high, edge
    w.put<uint8_t>(kMpBusIsa);
    w.put<uint8_t>(static_cast<uint8_t>(irq));
    w.put<uint8_t>(ioapic_id);
    w.put<uint8_t>(static_cast<uint8_t>(irq));
  }
  const auto local = [&](uint8_t type, uint8_t lint) {
    w.put<uint8_t>(kEntryLocalInt);
    w.put<uint8_t>(type);
    w.put<uint16_t>(0);
    w.put<uint8_t>(kMpBusIsa);
    w.put<uint8_t>(0);
    w.put<uint8_t>(0xFF);  // every LAPIC
    w.put<uint8_t>(lint);
    ++entries;
  };
  local(kIntTypeExtInt, 0);
  local(kIntTypeNmi, 1);

  const auto table_len = static_cast<uint16_t>(t.size() - kFloatingBytes);
  std::memcpy(t.data() + kFloatingBytes + 4, &table_len, 2);
  std::memcpy(t.data() + kFloatingBytes + 34, &entries, 2);
  // The table checksum covers the header and every entry (its own byte is still 0).
  t[kFloatingBytes + 7] =
      std::byte{checksum(std::span<const std::byte>(t).subspan(kFloatingBytes))};
  t[10] = std::byte{checksum(std::span<const std::byte>(t).first(kFloatingBytes))};
  return t;
}

}  // namespace labyrinth::vmm
