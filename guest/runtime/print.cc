// The formatter behind printf/snprintf (print.h). Output goes through a Sink:
// either the serial port or a bounded buffer.
#include "guest/runtime/print.h"

#include <stdint.h>

#include "guest/runtime/serial.h"

namespace guest {
namespace {

struct Sink {
  char* buf;    // nullptr: write to serial
  size_t size;  // buffer capacity including the NUL
  size_t len;   // characters produced so far

  void put(char c) {
    if (buf == nullptr) {
      serial_putc(c);
    } else if (len + 1 < size) {
      buf[len] = c;
    }
    ++len;
  }
};

void put_padded(Sink& out, const char* s, size_t n, int width, bool left, char pad) {
  int fill = width > static_cast<int>(n) ? width - static_cast<int>(n) : 0;
  if (!left) {
    // Zero padding goes after a sign.
    if (pad == '0' && n > 0 && s[0] == '-') {
      out.put('-');
      ++s;
      --n;
    }
    while (fill-- > 0) out.put(pad);
  }
  for (size_t i = 0; i < n; ++i) out.put(s[i]);
  if (left) {
    while (fill-- > 0) out.put(' ');
  }
}

// Formats value in base (10 or 16) into the end of tmp; returns the first char.
char* format_number(char* end, uint64_t value, unsigned base, bool upper, bool negative) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char* p = end;
  do {
    *--p = digits[value % base];
    value /= base;
  } while (value != 0);
  if (negative) *--p = '-';
  return p;
}

void format(Sink& out, const char* fmt, va_list args) {
  for (; *fmt != '\0'; ++fmt) {
    if (*fmt != '%') {
      out.put(*fmt);
      continue;
    }
    const char* spec_start = fmt++;
    bool left = false;
    char pad = ' ';
    for (;; ++fmt) {
      if (*fmt == '-') {
        left = true;
      } else if (*fmt == '0') {
        pad = '0';
      } else {
        break;
      }
    }
    int width = 0;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    int longs = 0;  // 0: int, 1: long, 2: long long; z counts as long
    while (*fmt == 'l' || *fmt == 'z') {
      ++longs;
      ++fmt;
    }

    char tmp[24];
    char* end = tmp + sizeof(tmp);
    switch (*fmt) {
      case 'd':
      case 'i': {
        int64_t v = longs == 0 ? va_arg(args, int) : va_arg(args, long long);
        uint64_t mag = v < 0 ? -static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
        char* s = format_number(end, mag, 10, false, v < 0);
        put_padded(out, s, end - s, width, left, pad);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = longs == 0 ? va_arg(args, unsigned) : va_arg(args, unsigned long long);
        char* s = format_number(end, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', false);
        put_padded(out, s, end - s, width, left, pad);
        break;
      }
      case 'p': {
        uint64_t v = reinterpret_cast<uintptr_t>(va_arg(args, void*));
        char* s = format_number(end, v, 16, false, false);
        out.put('0');
        out.put('x');
        put_padded(out, s, end - s, width > 2 ? width - 2 : 0, left, pad);
        break;
      }
      case 'c': {
        char c = static_cast<char>(va_arg(args, int));
        put_padded(out, &c, 1, width, left, ' ');
        break;
      }
      case 's': {
        const char* s = va_arg(args, const char*);
        if (s == nullptr) s = "(null)";
        size_t n = 0;
        while (s[n] != '\0') ++n;
        put_padded(out, s, n, width, left, ' ');
        break;
      }
      case '%':
        out.put('%');
        break;
      default:  // unknown conversion (or a trailing '%'): print it as written
        for (const char* p = spec_start; p <= fmt && *p != '\0'; ++p) out.put(*p);
        if (*fmt == '\0') return;
        break;
    }
  }
}

}  // namespace

void vprintf(const char* fmt, va_list args) {
  SpinLockGuard guard(serial_lock());
  Sink out{nullptr, 0, 0};
  format(out, fmt, args);
}

void printf(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vprintf(fmt, args);
  va_end(args);
}

void printf_unlocked(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  Sink out{nullptr, 0, 0};
  format(out, fmt, args);
  va_end(args);
}

size_t vsnprintf(char* buf, size_t size, const char* fmt, va_list args) {
  Sink out{buf, size, 0};
  format(out, fmt, args);
  if (size > 0) buf[out.len < size ? out.len : size - 1] = '\0';
  return out.len < size ? out.len : (size > 0 ? size - 1 : 0);
}

size_t snprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  size_t n = vsnprintf(buf, size, fmt, args);
  va_end(args);
  return n;
}

}  // namespace guest
