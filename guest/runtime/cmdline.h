// The guest kernel command line (boot info cmdline) as key=value parameters.
//
//   guest::Cmdline args = guest::Cmdline::from_boot_info(info);  // "frames=1000 mode=poll"
//   const uint64_t frames = args.u64("frames", 0);
//   const bool poll = args.choice("mode", {"irq", "poll"}, 0) == 1;
//   const bool verbose = args.flag("verbose", false);     // "verbose", "verbose=1|0|yes|no|on|off"
//   if (!args.check_known(kKeys) || !args.ok()) { guest::printf("%s\n", args.error()); ... }
//
// Tokens are separated by spaces or tabs; a token is `key=value` or a bare `key`
// (value ""). A key given twice: the last one wins. Numbers are decimal or 0x-hex,
// optionally with a k/m/g suffix (x1000, x1000000, x1000000000); anything else
// (empty, trailing junk, overflow) records an error and yields the fallback.
// The first error is kept in error(); ok() is false after any error.
// Pure code: no MMIO, only snprintf from print.h; it is unit-tested on the host.
#pragma once

#include <stddef.h>
#include <stdint.h>

struct labyrinth_boot_info;

namespace guest {

class Cmdline {
 public:
  Cmdline() = default;
  Cmdline(const char* text, size_t len);
  // The command line the VMM passed (cmdline_gpa / cmdline_len, bounded to 4 KiB).
  static Cmdline from_boot_info(const labyrinth_boot_info& info);

  // Raw lookup: true if key is present; *value points into the text (not
  // NUL-terminated), *value_len its length.
  bool find(const char* key, const char** value, size_t* value_len) const;
  bool has(const char* key) const;

  uint64_t u64(const char* key, uint64_t fallback);
  // A bare key means true; 1/0, yes/no, on/off, true/false.
  bool flag(const char* key, bool fallback);
  // Index of the value among choices[0..n), fallback if absent; an unknown
  // value is an error.
  size_t choice(const char* key, const char* const* choices, size_t n, size_t fallback);
  template <size_t N>
  size_t choice(const char* key, const char* const (&choices)[N], size_t fallback) {
    return choice(key, choices, N, fallback);
  }
  // Records an error for every key not in known[0..n).
  bool check_known(const char* const* known, size_t n);
  template <size_t N>
  bool check_known(const char* const (&known)[N]) {
    return check_known(known, N);
  }

  bool ok() const { return error_[0] == '\0'; }
  const char* error() const { return error_; }
  const char* text() const { return text_; }
  size_t length() const { return len_; }

 private:
  void fail(const char* key, size_t key_len, const char* what, const char* value, size_t value_len);

  const char* text_ = "";
  size_t len_ = 0;
  char error_[160] = {};
};

// Parses a number as Cmdline::u64 does. Returns false on malformed input.
bool parse_u64(const char* s, size_t len, uint64_t* out);

}  // namespace guest
