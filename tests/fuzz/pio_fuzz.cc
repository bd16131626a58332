// tests/fuzz/pio_fuzz.cc — guest port I/O sequences against the legacy devices on a real
// Bus laid out as in a VM: 16550 UART at 0x3F8, i8042 at 0x60-0x64, CMOS RTC at
// 0x70-0x71, PCI configuration mechanism 1 at 0xCF8-0xCFF (host bridge in slot 0, a
// checking function in slot 3), exit port at 0x501; and the same PCI bus's ECAM window
// on an MMIO bus at 0xC0000000 (pci_ecam.h), its second front end.
//
// The input is a sequence of accesses (port, width, value), ECAM accesses (address,
// width 1-8, value) and host input bursts. Small
// reference models of the devices run beside them; invariants after every access:
// UART register reads agree with the model (RBR/FIFO order, divisor latch, IER, LCR,
// MCR, SCR, LSR data-ready and overrun), the RX FIFO never exceeds its capacity, the
// transmitted bytes and the number of interrupt edges equal the model's; i8042 status
// and data reads follow its command model (0x20/0x60 configuration byte, self tests) and
// its keyboard's answers;
// CMOS reads give the fixed clock in BCD, status A-D and the RAM written; PCI
// CONFIG_ADDRESS reads back masked, CONFIG_DATA reads the selected function's dword
// (all-ones where nothing is) and a write reaches a function only as a dword-aligned
// offset with the mask of the bytes written; ECAM reads and writes reach the same
// function state (one model for both front ends), offsets 256-4095, other functions and
// accesses across a dword read all-ones and change nothing; a shutdown is asked for exactly on OUT
// 0xFE to 0x64 and on any write to 0x501; unmapped ports read as all-ones.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "devices/bus/bus.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/exit_device.h"
#include "devices/legacy/i8042.h"
#include "devices/pci/pci_bus.h"
#include "devices/pci/pci_ecam.h"
#include "devices/serial/uart16550.h"
#include "guest/abi/ports.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using labyrinth::devices::Uart16550;

struct CountingIrq final : labyrinth::devices::IrqLine {
  void trigger() override { ++edges; }
  uint64_t edges = 0;
};
struct Output final : labyrinth::devices::SerialOutput {
  void write(std::span<const uint8_t> bytes) override { text.append(bytes.begin(), bytes.end()); }
  std::string text;
};
struct Control final : labyrinth::devices::VmControl {
  void request_shutdown(int status, std::string_view) override { statuses.push_back(status); }
  void request_suspend() override { ++suspends; }
  std::vector<int> statuses;
  int suspends = 0;
};

// What a 16550 as documented in uart16550.h must do (byte accesses only).
struct UartModel {
  uint8_t ier = 0, lcr = 0x03, mcr = 0x08, scr = 0, dll = 0x0C, dlm = 0;
  bool overrun = false;
  std::deque<uint8_t> rx;
  std::string out;
  uint64_t edges = 0;
  bool dlab() const { return (lcr & 0x80) != 0; }

  void push(uint8_t b) {
    if (rx.size() >= Uart16550::kRxCapacity) {
      overrun = true;
      return;
    }
    if (rx.empty() && (ier & 1)) ++edges;
    rx.push_back(b);
  }
  void write(unsigned reg, uint8_t v) {
    switch (reg) {
      case 0:
        if (dlab()) {
          dll = v;
        } else if (mcr & 0x10) {
          push(v);
        } else {
          out.push_back(static_cast<char>(v));
          if (ier & 2) ++edges;
        }
        break;
      case 1:
        if (dlab()) {
          dlm = v;
        } else {
          const uint8_t old = ier;
          ier = v & 0x0F;
          if ((ier & 2) && !(old & 2)) ++edges;
          if ((ier & 1) && !(old & 1) && !rx.empty()) ++edges;
        }
        break;
      case 2:
        if (v & 0x02) rx.clear();
        break;
      case 3:
        lcr = v;
        break;
      case 4:
        mcr = v & 0x1F;
        break;
      case 7:
        scr = v;
        break;
      default:
        break;
    }
  }
  // Checks a value read from reg against the model and advances the model.
  void read(unsigned reg, uint8_t got) {
    switch (reg) {
      case 0: {
        uint8_t want = 0;
        if (dlab()) {
          want = dll;
        } else if (!rx.empty()) {
          want = rx.front();
          rx.pop_front();
        }
        FUZZ_CHECK(got == want, "RBR/DLL read %#x, model %#x", got, want);
        break;
      }
      case 1:
        FUZZ_CHECK(got == (dlab() ? dlm : ier), "IER/DLM read %#x", got);
        break;
      case 2: {
        const uint8_t id = got & 0x0F;
        FUZZ_CHECK(id == 1 || id == 2 || id == 4, "IIR id %#x", id);
        if ((ier & 1) && !rx.empty()) FUZZ_CHECK(id == 4, "RX data pending but IIR %#x", got);
        if (id == 4) FUZZ_CHECK((ier & 1) && !rx.empty(), "IIR reports RX data with none");
        break;
      }
      case 3:
        FUZZ_CHECK(got == lcr, "LCR read %#x, model %#x", got, lcr);
        break;
      case 4:
        FUZZ_CHECK(got == mcr, "MCR read %#x, model %#x", got, mcr);
        break;
      case 5: {
        const uint8_t want = 0x60 | (overrun ? 0x02 : 0) | (rx.empty() ? 0 : 0x01);
        FUZZ_CHECK(got == want, "LSR read %#x, model %#x", got, want);
        overrun = false;
        break;
      }
      case 7:
        FUZZ_CHECK(got == scr, "SCR read %#x, model %#x", got, scr);
        break;
      default:
        break;
    }
  }
};

// The i8042's command interface (i8042.h) and its keyboard (the answer table in
// ps2_keyboard.h): keyboard bytes wait in a queue of at most 16 (the buffer's included),
// a controller answer goes ahead of a keyboard byte in the buffer.
struct I8042Model {
  uint8_t ctr = labyrinth::devices::I8042::kInitialCtr, out = 0;
  bool full = false, from_kbd = false, ctr_pending = false, aux_out_pending = false;
  std::deque<uint8_t> keys;                  // keyboard bytes behind the buffer
  uint8_t kbd_waiting = 0, kbd_last = 0xAA;  // the keyboard: parameter due for, last byte

  void answer(uint8_t v) {
    if (full && from_kbd) keys.push_front(out);
    out = v, full = true, from_kbd = false;
  }
  void feed() {
    if (full || keys.empty()) return;
    out = keys.front(), full = true, from_kbd = true;
    keys.pop_front();
  }
  std::vector<uint8_t> keyboard(uint8_t b) {
    const bool xlat = (ctr & 0x40) != 0;
    std::vector<uint8_t> r;
    if (kbd_waiting != 0 && b < 0xED) {
      if (kbd_waiting != 0xF0 || b == 2) {
        r = {0xFA};
      } else if (b == 0) {
        r = {0xFA, static_cast<uint8_t>(xlat ? 0x41 : 2)};
      } else {
        r = {0xFE};
      }
      kbd_waiting = 0;
    } else {
      kbd_waiting = 0;
      if (b == 0xED || b == 0xF3 || b == 0xF0) {
        kbd_waiting = b, r = {0xFA};
      } else if (b == 0xEE) {
        r = {0xEE};
      } else if (b == 0xF2) {
        r = {0xFA, 0xAB, static_cast<uint8_t>(xlat ? 0x41 : 0x83)};
      } else if (b == 0xF4 || b == 0xF5 || b == 0xF6) {
        r = {0xFA};
      } else if (b == 0xFE) {
        r = {kbd_last};
      } else if (b == 0xFF) {
        r = {0xFA, 0xAA};
      } else {
        r = {0xFE};
      }
    }
    kbd_last = r.back();
    return r;
  }

  void write(unsigned off, uint8_t v) {
    if (off == 4) {
      ctr_pending = aux_out_pending = false;
      switch (v) {
        case 0x20:
          answer(ctr);
          break;
        case 0x60:
          ctr_pending = true;
          break;
        case 0xA7:
          ctr |= 0x20;
          break;
        case 0xA8:
          ctr &= 0xDF;
          break;
        case 0xAD:
          ctr |= 0x10;
          break;
        case 0xAE:
          ctr &= 0xEF;
          break;
        case 0xAA:
          answer(0x55);
          break;
        case 0xA9:
          answer(0x01);
          break;
        case 0xAB:
          answer(0);
          break;
        case 0xD3:
          aux_out_pending = true;
          break;
        default:
          break;
      }
    } else if (off == 0) {
      if (ctr_pending) {
        ctr = v;
      } else if (aux_out_pending) {
        answer(v);
      } else {
        const std::vector<uint8_t> r = keyboard(v);
        if (keys.size() + (full && from_kbd ? 1 : 0) + r.size() <= 16) {
          keys.insert(keys.end(), r.begin(), r.end());
          feed();
        }
      }
      ctr_pending = aux_out_pending = false;
    }
  }
  uint8_t read(unsigned off) {
    if (off == 4) return 0x14 | (full ? 1 : 0);  // never "AUX data" (0x20)
    if (off == 0) {
      full = false, from_kbd = false;
      const uint8_t v = out;
      feed();
      return v;
    }
    return 0;
  }
};

// The CMOS RTC (cmos.h) with a fixed clock. Written from the register table in cmos.h,
// not from cmos.cc: an oracle that reused the device's code would check nothing.
struct CmosModel {
  std::time_t now = 0;
  uint8_t index = 0;
  std::array<uint8_t, 128> ram{};

  static uint8_t bcd(int v) { return static_cast<uint8_t>(((v / 10) % 10) << 4 | (v % 10)); }
  void write(unsigned off, uint8_t v) {
    if (off == 0) {
      index = v & 0x7F;
    } else if (index == 0x0B) {
      ram[0x0B] = static_cast<uint8_t>((v & ~0x06) | 0x02);
    } else if (index == 0x01 || index == 0x03 || index == 0x05 ||
               (index > 0x0D && index != 0x32)) {  // the alarm registers and the RAM
      ram[index] = v;
    }
  }
  uint8_t read(unsigned off) const {
    if (off == 0) return index;
    std::tm tm{};
    if (gmtime_r(&now, &tm) == nullptr) tm = std::tm{};
    switch (index) {
      case 0x00:
        return bcd(tm.tm_sec);
      case 0x02:
        return bcd(tm.tm_min);
      case 0x04:
        return bcd(tm.tm_hour);
      case 0x06:
        return bcd(tm.tm_wday + 1);
      case 0x07:
        return bcd(tm.tm_mday);
      case 0x08:
        return bcd(tm.tm_mon + 1);
      case 0x09:
        return bcd(tm.tm_year % 100);
      case 0x32:
        return bcd((tm.tm_year + 1900) / 100);
      case 0x0A:
        return 0x26;
      case 0x0B:
        return ram[0x0B] == 0 ? 0x02 : ram[0x0B];
      case 0x0C:
        return 0;
      case 0x0D:
        return 0x80;
      default:
        return ram[index];
    }
  }
};

// A PCI function that checks what the bus hands it and keeps a config space of 64
// dwords (masked writes), which the model mirrors.
struct CheckingFunction final : labyrinth::devices::PciFunction {
  std::string_view label() const override { return "fuzz-fn"; }
  uint32_t read_config(uint8_t offset) override {
    FUZZ_CHECK(offset % 4 == 0, "read_config at unaligned %#x", offset);
    return space[offset / 4];
  }
  void write_config(uint8_t offset, uint32_t value, uint32_t mask) override {
    FUZZ_CHECK(offset % 4 == 0, "write_config at unaligned %#x", offset);
    // One run of whole byte lanes (ECAM also passes the 3-byte accesses a Bus may carry).
    FUZZ_CHECK(mask == 0xFF || mask == 0xFF00 || mask == 0xFF0000 || mask == 0xFF000000 ||
                   mask == 0xFFFF || mask == 0xFFFF00 || mask == 0xFFFF0000 || mask == 0xFFFFFF ||
                   mask == 0xFFFFFF00 || mask == 0xFFFFFFFF,
               "write_config mask %#x", mask);
    FUZZ_CHECK((value & ~mask) == 0, "write_config value %#x outside mask %#x", value, mask);
    space[offset / 4] = (space[offset / 4] & ~mask) | value;
  }
  std::array<uint32_t, 64> space{};
};

// Configuration mechanism 1 (pci_bus.h): the address register and what it selects.
struct PciModel {
  uint32_t address = 0;
  uint32_t low = 0;  // CONFIG_ADDRESS bits 1:0: added to the data port's offset, as QEMU does
  std::array<uint32_t, 64> fn3{};  // the checking function's space

  // The selected dword, or nullopt if nothing is selected. host: slot 0's header.
  std::optional<uint32_t> dword() const {
    if ((address & 0x80000000u) == 0 || ((address >> 16) & 0xFF) != 0 ||
        ((address >> 8) & 7) != 0) {
      return std::nullopt;
    }
    const uint32_t slot = (address >> 11) & 0x1F;
    const auto reg = static_cast<uint8_t>(address & 0xFC);
    if (slot == 0) {
      return labyrinth::devices::pci_header_dword(labyrinth::devices::PciHostBridge::kId, reg);
    }
    if (slot == 3) return fn3[reg / 4];
    return std::nullopt;
  }
  void write(unsigned off, std::span<const uint8_t> bytes) {
    if (off == 0 && bytes.size() == 4) {
      std::memcpy(&address, bytes.data(), 4);
      low = address & 3u;
      address &= 0x80FFFFFCu;
      return;
    }
    if (off < 4 || off - 4 + low + bytes.size() > 4 || !dword()) return;
    if (((address >> 11) & 0x1F) != 3) return;  // the host bridge ignores writes
    uint32_t& d = fn3[(address & 0xFC) / 4];
    for (size_t i = 0; i < bytes.size(); ++i) {
      const unsigned shift = 8 * (off - 4 + low + i);
      d = (d & ~(0xFFu << shift)) | uint32_t{bytes[i]} << shift;
    }
  }
  // ECAM: the dword at offset off of the window, if a function is there and off lies in
  // its 256-byte space.
  static constexpr uint64_t kEcamLen = 1u << 20;  // bus 0
  std::optional<uint32_t> ecam_dword(uint64_t off) const {
    const uint64_t slot = (off >> 15) & 0x1F, function = (off >> 12) & 7, reg = off & 0xFFF;
    if (off >= kEcamLen || function != 0 || reg >= 256) return std::nullopt;
    if (slot == 0) {
      return labyrinth::devices::pci_header_dword(labyrinth::devices::PciHostBridge::kId,
                                                  static_cast<uint8_t>(reg & 0xFC));
    }
    if (slot == 3) return fn3[reg / 4];
    return std::nullopt;
  }
  static bool ecam_whole(uint64_t off, size_t width) {
    return width >= 1 && width <= 4 && (off & 3) + width <= 4;
  }
  void ecam_write(uint64_t off, std::span<const uint8_t> bytes) {
    if (!ecam_whole(off, bytes.size()) || !ecam_dword(off)) return;
    if (((off >> 15) & 0x1F) != 3) return;  // the host bridge ignores writes
    uint32_t& d = fn3[(off & 0xFF) / 4];
    for (size_t i = 0; i < bytes.size(); ++i) {
      const unsigned shift = 8 * ((off & 3) + i);
      d = (d & ~(0xFFu << shift)) | uint32_t{bytes[i]} << shift;
    }
  }
  void ecam_read(uint64_t off, std::span<const uint8_t> got) const {
    std::array<uint8_t, 8> want{};
    want.fill(0xFF);
    if (ecam_whole(off, got.size())) {
      if (auto d = ecam_dword(off)) {
        for (size_t i = 0; i < got.size(); ++i)
          want[i] = static_cast<uint8_t>(*d >> (8 * ((off & 3) + i)));
      }
    }
    for (size_t i = 0; i < got.size(); ++i) {
      FUZZ_CHECK(got[i] == want[i], "ECAM read at %#llx+%zu/%zu: %#x, model %#x",
                 static_cast<unsigned long long>(off), i, got.size(), got[i], want[i]);
    }
  }
  void read(unsigned off, std::span<const uint8_t> got) const {
    std::array<uint8_t, 4> want{0xFF, 0xFF, 0xFF, 0xFF};
    if (off == 0 && got.size() == 4) {
      std::memcpy(want.data(), &address, 4);
    } else if (off >= 4 && off - 4 + low + got.size() <= 4) {
      if (auto d = dword()) {
        for (size_t i = 0; i < got.size(); ++i)
          want[i] = static_cast<uint8_t>(*d >> (8 * (off - 4 + low + i)));
      }
    }
    for (size_t i = 0; i < got.size(); ++i) {
      FUZZ_CHECK(got[i] == want[i], "PCI read at %#x+%zu/%zu: %#x, model %#x (address %#x)",
                 0xCF8 + off, i, got.size(), got[i], want[i], address);
    }
  }
};

constexpr uint16_t kPorts[] = {LABYRINTH_PORT_COM1,
                               LABYRINTH_PORT_COM1 + 1,
                               LABYRINTH_PORT_COM1 + 2,
                               LABYRINTH_PORT_COM1 + 3,
                               LABYRINTH_PORT_COM1 + 4,
                               LABYRINTH_PORT_COM1 + 5,
                               LABYRINTH_PORT_COM1 + 6,
                               LABYRINTH_PORT_COM1 + 7,
                               LABYRINTH_PORT_I8042_DATA,
                               0x61,
                               LABYRINTH_PORT_I8042_CMD,
                               LABYRINTH_PORT_EXIT,
                               LABYRINTH_PORT_EXIT + 3,
                               0x3F7,
                               0x400,
                               0x63,
                               0x70,
                               0x71,
                               0x72,
                               0xCF8,
                               0xCF9,
                               0xCFB,
                               0xCFC,
                               0xCFD,
                               0xCFE,
                               0xCFF};
// Values that reach deeper states: i8042 commands, CMOS indexes, PCI addresses.
constexpr uint32_t kValues[] = {0x20,       0x60,       0xAA,       0xA9,       0xAB,
                                0xA7,       0xA8,       0xAD,       0xAE,       0xD3,
                                0xFE,       0x0A,       0x0B,       0x0D,       0x32,
                                0x40,       0x80000000, 0x80000008, 0x8000002C, 0x80001800,
                                0x80001804, 0x80001810, 0x80010000, 0x80000100, 0x7F};

bool mapped(uint32_t port, size_t width) {
  auto inside = [&](uint32_t base, uint32_t len) {
    return port >= base && port + width <= base + len;
  };
  return inside(LABYRINTH_PORT_COM1, 8) || inside(labyrinth::devices::I8042::kBase, 5) ||
         inside(LABYRINTH_PORT_EXIT, 4) || inside(0x70, 2) || inside(0xCF8, 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);  // unmapped: logged
  (void)quiet;
  FuzzedDataProvider in(data, size);
  CountingIrq irq;
  Output out;
  Control control;
  auto uart = std::make_shared<Uart16550>(out, irq);
  labyrinth::devices::Bus pio("pio");
  FUZZ_CHECK(pio.insert(uart, LABYRINTH_PORT_COM1, 8).has_value(), "insert uart");
  FUZZ_CHECK(pio.insert(std::make_shared<labyrinth::devices::I8042>(control),
                        labyrinth::devices::I8042::kBase, labyrinth::devices::I8042::kLen)
                 .has_value(),
             "insert i8042");
  FUZZ_CHECK(
      pio.insert(std::make_shared<labyrinth::devices::ExitDevice>(control), LABYRINTH_PORT_EXIT, 4)
          .has_value(),
      "insert exit");
  // Within system_clock's range (+-292 years of nanoseconds): +-2^33 s, 272 years.
  const std::time_t now =
      std::clamp<int64_t>(in.ConsumeIntegral<int64_t>() >> in.ConsumeIntegralInRange<int>(0, 63),
                          -(int64_t{1} << 33), int64_t{1} << 33);
  // A whole second: never in the update cycle (status A's UIP clear).
  const auto at = std::chrono::system_clock::from_time_t(now);
  FUZZ_CHECK(pio.insert(std::make_shared<labyrinth::devices::Cmos>([at] { return at; }), 0x70, 2)
                 .has_value(),
             "insert cmos");
  auto pci = std::make_shared<labyrinth::devices::PciBus>();
  auto fn = std::make_shared<CheckingFunction>();
  FUZZ_CHECK(pci->insert(3, fn).has_value(), "insert function");
  FUZZ_CHECK(!pci->insert(0, fn).has_value() && !pci->insert(32, fn).has_value(),
             "PCI slot 0 taken, 32 out of range");
  FUZZ_CHECK(pio.insert(pci, 0xCF8, 8).has_value(), "insert pci");
  labyrinth::devices::Bus mmio("mmio");
  constexpr uint64_t kEcam = 0xC0000000;  // the machine's kPciEcamGpa
  FUZZ_CHECK(
      mmio.insert(std::make_shared<labyrinth::devices::PciEcam>(pci), kEcam, PciModel::kEcamLen)
          .has_value(),
      "insert ecam");
  UartModel model;
  I8042Model kbd;
  CmosModel cmos;
  cmos.now = now;
  PciModel pci_model;
  size_t shutdowns = 0;

  while (in.remaining_bytes() > 0) {
    const uint8_t op = in.ConsumeIntegralInRange<uint8_t>(0, 4);
    if (op == 4) {  // ECAM: mostly slots 0 and 3, any register, some just outside the window
      uint64_t addr = 0;
      if (in.ConsumeBool()) {
        const uint64_t slot = in.ConsumeBool() ? 3 : in.ConsumeIntegralInRange<uint64_t>(0, 31);
        const uint64_t function = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint64_t>(0, 7);
        addr =
            kEcam + (slot << 15 | function << 12 | in.ConsumeIntegralInRange<uint64_t>(0, 0xFFF));
      } else {
        addr = kEcam - 16 + in.ConsumeIntegralInRange<uint64_t>(0, PciModel::kEcamLen + 32);
      }
      const size_t width = in.ConsumeIntegralInRange<size_t>(1, 8);
      const bool inside = addr >= kEcam && addr + width <= kEcam + PciModel::kEcamLen;
      std::array<uint8_t, 8> buf{};
      const std::span<uint8_t> bytes(buf.data(), width);
      if (in.ConsumeBool()) {
        const uint64_t v = in.ConsumeIntegral<uint64_t>();
        for (size_t i = 0; i < width; ++i) buf[i] = static_cast<uint8_t>(v >> (8 * i));
        FUZZ_CHECK(mmio.write(addr, bytes) == inside, "ECAM write %#llx/%zu dispatch",
                   static_cast<unsigned long long>(addr), width);
        if (inside) pci_model.ecam_write(addr - kEcam, bytes);
      } else {
        FUZZ_CHECK(mmio.read(addr, bytes) == inside, "ECAM read %#llx/%zu dispatch",
                   static_cast<unsigned long long>(addr), width);
        if (inside) {
          pci_model.ecam_read(addr - kEcam, bytes);
        } else {
          for (size_t i = 0; i < width; ++i) FUZZ_CHECK(buf[i] == 0xFF, "unmapped read not ~0");
        }
      }
      continue;
    }
    if (op == 3) {  // host -> guest input (the event loop's stdin path)
      const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 1100));
      const size_t space = uart->rx_space();
      const size_t took = uart->enqueue_input(bytes);
      FUZZ_CHECK(took == std::min(space, bytes.size()), "enqueue took %zu of %zu (space %zu)", took,
                 bytes.size(), space);
      for (size_t i = 0; i < took; ++i) model.push(bytes[i]);
      continue;
    }
    const uint32_t port = in.ConsumeBool()
                              ? kPorts[in.ConsumeIntegralInRange<size_t>(0, std::size(kPorts) - 1)]
                              : in.ConsumeIntegral<uint16_t>();
    const size_t width = size_t{1} << in.ConsumeIntegralInRange<unsigned>(0, 2);
    const bool is_mapped = mapped(port, width);
    std::array<uint8_t, 4> buf{};
    const std::span<uint8_t> bytes(buf.data(), width);
    auto inside = [&](uint32_t base, uint32_t len) {
      return is_mapped && port >= base && port + width <= base + len;
    };
    if (op == 0) {
      const uint32_t v = in.ConsumeBool()
                             ? kValues[in.ConsumeIntegralInRange<size_t>(0, std::size(kValues) - 1)]
                             : in.ConsumeIntegral<uint32_t>();
      for (size_t i = 0; i < width; ++i) buf[i] = static_cast<uint8_t>(v >> (8 * i));
      FUZZ_CHECK(pio.write(port, bytes) == is_mapped, "write %#x/%zu dispatch", port, width);
      if (port >= LABYRINTH_PORT_COM1 && port < LABYRINTH_PORT_COM1 + 8 && width == 1 &&
          is_mapped) {
        model.write(port - LABYRINTH_PORT_COM1, buf[0]);
      }
      if (is_mapped && width == 1 && port == LABYRINTH_PORT_I8042_CMD &&
          buf[0] == LABYRINTH_I8042_RESET) {
        ++shutdowns;
      }
      if (is_mapped && port == LABYRINTH_PORT_EXIT) ++shutdowns;
      if (inside(0x60, 5) && width == 1) kbd.write(port - 0x60, buf[0]);
      if (inside(0x70, 2) && width == 1) cmos.write(port - 0x70, buf[0]);
      if (inside(0xCF8, 8)) pci_model.write(port - 0xCF8, bytes);
    } else {
      FUZZ_CHECK(pio.read(port, bytes) == is_mapped, "read %#x/%zu dispatch", port, width);
      if (!is_mapped) {
        for (size_t i = 0; i < width; ++i) FUZZ_CHECK(buf[i] == 0xFF, "unmapped read not ~0");
      } else if (port >= LABYRINTH_PORT_COM1 && port < LABYRINTH_PORT_COM1 + 8) {
        if (width == 1) {
          model.read(port - LABYRINTH_PORT_COM1, buf[0]);
        } else {
          for (size_t i = 0; i < width; ++i) FUZZ_CHECK(buf[i] == 0, "wide UART read filled");
        }
      } else if (inside(0x60, 5)) {
        const uint8_t want = width == 1 ? kbd.read(port - 0x60) : 0;
        FUZZ_CHECK(buf[0] == want, "i8042 read %#x at %#x, model %#x", buf[0], port, want);
      } else if (inside(0x70, 2)) {
        const uint8_t want = width == 1 ? cmos.read(port - 0x70) : 0;
        FUZZ_CHECK(buf[0] == want, "CMOS read %#x at %#x (index %#x), model %#x", buf[0], port,
                   cmos.index, want);
      } else if (inside(0xCF8, 8)) {
        pci_model.read(port - 0xCF8, bytes);
      }
    }
    FUZZ_CHECK(uart->rx_space() <= Uart16550::kRxCapacity, "rx_space %zu", uart->rx_space());
    FUZZ_CHECK(uart->rx_space() == Uart16550::kRxCapacity - model.rx.size(),
               "FIFO depth %zu, model %zu", Uart16550::kRxCapacity - uart->rx_space(),
               model.rx.size());
    FUZZ_CHECK(control.statuses.size() == shutdowns, "%zu shutdown requests, expected %zu",
               control.statuses.size(), shutdowns);
  }
  FUZZ_CHECK(fn->space == pci_model.fn3, "the PCI function's config space differs from the model");
  FUZZ_CHECK(out.text == model.out, "transmitted %zu bytes, model %zu", out.text.size(),
             model.out.size());
  FUZZ_CHECK(irq.edges == model.edges, "%llu interrupt edges, model %llu",
             static_cast<unsigned long long>(irq.edges),
             static_cast<unsigned long long>(model.edges));
  return 0;
}
