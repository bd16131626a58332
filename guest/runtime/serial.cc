// 16550 UART driver, output only. See serial.h.
#include "guest/runtime/serial.h"

#include "guest/abi/ports.h"
#include "guest/runtime/cpu.h"

namespace guest {
namespace {

constexpr uint16_t kBase = LABYRINTH_PORT_COM1;
constexpr uint16_t kThr = kBase + 0;   // transmit holding register (DLAB = 0)
constexpr uint16_t kIer = kBase + 1;   // interrupt enable
constexpr uint16_t kFcr = kBase + 2;   // FIFO control
constexpr uint16_t kLcr = kBase + 3;   // line control
constexpr uint16_t kMcr = kBase + 4;   // modem control
constexpr uint16_t kLsr = kBase + 5;   // line status
constexpr uint8_t kLsrThre = 1u << 5;  // transmit holding register empty
// An emulated UART is always ready; the bound only keeps a broken one from
// hanging the guest.
constexpr int kThrePollLimit = 100000;

SpinLock g_lock;

void put_raw(char c) {
  for (int i = 0; i < kThrePollLimit && (inb(kLsr) & kLsrThre) == 0; ++i) pause();
  outb(kThr, static_cast<uint8_t>(c));
}

}  // namespace

void serial_init() {
  outb(kIer, 0x00);  // no UART interrupts
  outb(kLcr, 0x03);  // 8N1, DLAB = 0 (baud rate is meaningless when emulated)
  outb(kFcr, 0x07);  // enable and reset FIFOs
  outb(kMcr, 0x03);  // DTR | RTS
}

void serial_putc(char c) {
  put_raw(c);
}

void serial_write(const char* s, size_t len) {
  for (size_t i = 0; i < len; ++i) serial_putc(s[i]);
}

SpinLock& serial_lock() {
  return g_lock;
}

}  // namespace guest
