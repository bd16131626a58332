// devices/legacy/absent_ports.h — PC I/O ports that a stock Linux probes at every boot
// and that Labyrinth leaves without a device on purpose.
//
// A Linux boot touches 67 such ports (Debian 6.1, counted with --log-level debug): the
// 8250 driver probes the legacy COM2-COM4 UARTs (IER at 0x2f9, 0x3e9, 0x2e9), its Fintek
// quirk and the Super I/O drivers knock at the two configuration port pairs (0x2e/0x2f,
// 0x4e/0x4f), and the ISA DMA code reads a page register (0x87). Each answers as nothing
// does on a PC — reads all-ones, writes dropped, exactly what an unmapped port gives — so
// the drivers conclude "absent" at once. The difference from an unmapped port is the log:
// these are expected, so they are counted (`--stats`: pio_absent) and not warned about,
// leaving the unmapped-port warning to accesses nothing explains (a hostile or broken
// guest).
//
//   for (const auto& r : kPcAbsentPorts)
//     pio.insert(std::make_shared<AbsentPorts>(r.what, counter), r.base, r.len);
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "devices/bus/bus.h"

namespace labyrinth::devices {

struct AbsentRange {
  uint64_t base;
  uint64_t len;
  std::string_view what;  // the label: what a PC would have there
};

// What a stock Linux probes that no Labyrinth device covers (COM1 is the UART).
inline constexpr std::array<AbsentRange, 6> kPcAbsentPorts = {{
    {0x2E, 2, "absent: Super I/O configuration (0x2e)"},
    {0x4E, 2, "absent: Super I/O configuration (0x4e)"},
    {0x81, 15, "absent: ISA DMA page registers"},
    {0x2E8, 8, "absent: COM4"},
    {0x2F8, 8, "absent: COM2"},
    {0x3E8, 8, "absent: COM3"},
}};

class AbsentPorts final : public BusDevice {
 public:
  // accesses counts every read and write of every range that shares it.
  AbsentPorts(std::string_view what, std::shared_ptr<std::atomic<uint64_t>> accesses)
      : what_(what), accesses_(std::move(accesses)) {}
  std::string_view label() const override { return what_; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::string_view what_;
  std::shared_ptr<std::atomic<uint64_t>> accesses_;
};

}  // namespace labyrinth::devices
