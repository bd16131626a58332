// COM1 (16550 UART at LABYRINTH_PORT_COM1) output: the guest's console.
//
//   guest::serial_init();
//   guest::serial_write("hi\n", 3);   // caller holds serial_lock() for whole lines
//
// Output is polled: before each byte we wait (bounded) for LSR.THRE. Interrupts
// from the UART stay disabled (IER = 0). serial_lock() serialises whole lines
// or reports between vCPUs; printf() (print.h) takes it for you.
#pragma once

#include <stddef.h>

#include "guest/runtime/spinlock.h"

namespace guest {

void serial_init();
void serial_putc(char c);
void serial_write(const char* s, size_t len);
SpinLock& serial_lock();

}  // namespace guest
