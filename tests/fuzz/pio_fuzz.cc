// tests/fuzz/pio_fuzz.cc — guest port I/O sequences against the legacy devices on a real
// Bus laid out as in a VM: 16550 UART at 0x3F8, i8042 at 0x60-0x64, exit port at 0x501.
//
// The input is a sequence of accesses (port, width, value) and host input bursts. A
// small reference model of the UART runs beside the device; invariants after every
// access: register reads agree with the model (RBR/FIFO order, divisor latch, IER,
// LCR, MCR, SCR, LSR data-ready and overrun), the RX FIFO never exceeds its capacity,
// the transmitted bytes and the number of interrupt edges equal the model's, the i8042
// asks for a shutdown exactly on OUT 0xFE to 0x64, the exit port on any write to 0x501,
// and unmapped ports read as all-ones.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "devices/bus/bus.h"
#include "devices/legacy/exit_device.h"
#include "devices/legacy/i8042.h"
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
  std::vector<int> statuses;
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
                               0x400};

bool mapped(uint32_t port, size_t width) {
  auto inside = [&](uint32_t base, uint32_t len) {
    return port >= base && port + width <= base + len;
  };
  return inside(LABYRINTH_PORT_COM1, 8) || inside(labyrinth::devices::I8042::kBase, 5) ||
         inside(LABYRINTH_PORT_EXIT, 4);
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
  UartModel model;
  size_t shutdowns = 0;

  while (in.remaining_bytes() > 0) {
    const uint8_t op = in.ConsumeIntegralInRange<uint8_t>(0, 3);
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
    if (op == 0) {
      const uint32_t v = in.ConsumeIntegral<uint32_t>();
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
      } else if (port >= labyrinth::devices::I8042::kBase && port < 0x65) {
        const uint8_t want = (width == 1 && port == LABYRINTH_PORT_I8042_CMD)
                                 ? labyrinth::devices::I8042::kStatusSystemFlag
                                 : 0;
        FUZZ_CHECK(buf[0] == want, "i8042 read %#x at %#x", buf[0], port);
      }
    }
    FUZZ_CHECK(uart->rx_space() <= Uart16550::kRxCapacity, "rx_space %zu", uart->rx_space());
    FUZZ_CHECK(uart->rx_space() == Uart16550::kRxCapacity - model.rx.size(),
               "FIFO depth %zu, model %zu", Uart16550::kRxCapacity - uart->rx_space(),
               model.rx.size());
    FUZZ_CHECK(control.statuses.size() == shutdowns, "%zu shutdown requests, expected %zu",
               control.statuses.size(), shutdowns);
  }
  FUZZ_CHECK(out.text == model.out, "transmitted %zu bytes, model %zu", out.text.size(),
             model.out.size());
  FUZZ_CHECK(irq.edges == model.edges, "%llu interrupt edges, model %llu",
             static_cast<unsigned long long>(irq.edges),
             static_cast<unsigned long long>(model.edges));
  return 0;
}
