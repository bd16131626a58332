// tests/guest/null_serial.cc — the runtime's serial port and CPU index for host tests
// of code that formats through print.cc but whose output nobody reads (the tests
// check the buffers): every character is dropped.
#include "guest/runtime/print.h"
#include "guest/runtime/serial.h"

namespace guest {
void serial_putc(char) {}
SpinLock& serial_lock() {
  static SpinLock lock;
  return lock;
}
unsigned this_cpu() {
  return 0;
}
}  // namespace guest
