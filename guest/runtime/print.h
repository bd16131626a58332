// printf-style formatting to the serial console, for guest reports.
//
//   guest::printf("cpu %u online (apic id %u)\n", cpu, id);
//
// Conversions: %d %i %u %x %X %c %s %p %%, with length modifiers l, ll, z and
// an optional '-' / '0' flag and field width ("%016lx", "%-8s"). Anything else
// is printed literally. printf() holds the serial lock for the whole call, so
// a line printed with one call never interleaves with another CPU's output.
// snprintf() formats into a buffer (always NUL-terminated, truncating) and
// returns the number of characters written.
#pragma once

#include <stdarg.h>
#include <stddef.h>

namespace guest {

void printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void vprintf(const char* fmt, va_list args);
// As printf, but without taking the serial lock: for the exception path only.
void printf_unlocked(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
size_t snprintf(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
size_t vsnprintf(char* buf, size_t size, const char* fmt, va_list args);

}  // namespace guest
