// key=value command line parsing. See cmdline.h.
#include "guest/runtime/cmdline.h"

#include "guest/abi/boot_info.h"
#include "guest/runtime/print.h"

namespace guest {
namespace {

constexpr size_t kMaxCmdline = 4096;  // boot_info.h: "< 4 KiB"

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t cstr_len(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

bool equals(const char* a, size_t a_len, const char* b) {
  const size_t b_len = cstr_len(b);
  if (a_len != b_len) return false;
  for (size_t i = 0; i < a_len; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// Calls fn(key, key_len, value, value_len) for each token, in order.
template <typename Fn>
void for_each_token(const char* text, size_t len, Fn fn) {
  size_t i = 0;
  while (i < len) {
    while (i < len && is_space(text[i])) ++i;
    if (i >= len || text[i] == '\0') break;  // a NUL ends the command line
    const size_t start = i;
    while (i < len && !is_space(text[i]) && text[i] != '\0') ++i;
    const char* tok = text + start;
    const size_t tok_len = i - start;
    size_t eq = 0;
    while (eq < tok_len && tok[eq] != '=') ++eq;
    if (eq < tok_len) {
      fn(tok, eq, tok + eq + 1, tok_len - eq - 1);
    } else {
      fn(tok, tok_len, tok + tok_len, size_t{0});
    }
  }
}

void copy_bounded(char* dst, size_t size, const char* src, size_t len) {
  size_t n = len < size - 1 ? len : size - 1;
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  dst[n] = '\0';
}

}  // namespace

bool parse_u64(const char* s, size_t len, uint64_t* out) {
  if (len == 0) return false;
  uint64_t multiplier = 1;
  const char last = s[len - 1];
  const bool hex = len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  if (!hex) {
    if (last == 'k' || last == 'K') multiplier = 1000;
    if (last == 'm' || last == 'M') multiplier = 1000000;
    if (last == 'g' || last == 'G') multiplier = 1000000000;
    if (multiplier != 1) --len;
    if (len == 0) return false;
  }
  uint64_t v = 0;
  const uint64_t base = hex ? 16 : 10;
  for (size_t i = hex ? 2 : 0; i < len; ++i) {
    const char c = s[i];
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return false;
    }
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  if (multiplier != 1 && v > UINT64_MAX / multiplier) return false;
  *out = v * multiplier;
  return true;
}

Cmdline::Cmdline(const char* text, size_t len) : text_(text), len_(len) {
  if (text_ == nullptr) {
    text_ = "";
    len_ = 0;
  }
  if (len_ > kMaxCmdline) len_ = kMaxCmdline;
}

Cmdline Cmdline::from_boot_info(const labyrinth_boot_info& info) {
  if (info.cmdline_gpa == 0) return Cmdline();
  return Cmdline(reinterpret_cast<const char*>(info.cmdline_gpa), info.cmdline_len);
}

bool Cmdline::find(const char* key, const char** value, size_t* value_len) const {
  bool found = false;
  for_each_token(text_, len_, [&](const char* k, size_t k_len, const char* v, size_t v_len) {
    if (equals(k, k_len, key)) {  // keep going: the last occurrence wins
      found = true;
      *value = v;
      *value_len = v_len;
    }
  });
  return found;
}

bool Cmdline::has(const char* key) const {
  const char* v;
  size_t n;
  return find(key, &v, &n);
}

uint64_t Cmdline::u64(const char* key, uint64_t fallback) {
  const char* v;
  size_t n;
  if (!find(key, &v, &n)) return fallback;
  uint64_t out;
  if (!parse_u64(v, n, &out)) {
    fail(key, cstr_len(key), "is not a number", v, n);
    return fallback;
  }
  return out;
}

bool Cmdline::flag(const char* key, bool fallback) {
  const char* v;
  size_t n;
  if (!find(key, &v, &n)) return fallback;
  if (n == 0 || equals(v, n, "1") || equals(v, n, "yes") || equals(v, n, "on") ||
      equals(v, n, "true")) {
    return true;
  }
  if (equals(v, n, "0") || equals(v, n, "no") || equals(v, n, "off") || equals(v, n, "false")) {
    return false;
  }
  fail(key, cstr_len(key), "is not a boolean (1/0, yes/no, on/off, true/false)", v, n);
  return fallback;
}

size_t Cmdline::choice(const char* key, const char* const* choices, size_t count, size_t fallback) {
  const char* v;
  size_t n;
  if (!find(key, &v, &n)) return fallback;
  for (size_t i = 0; i < count; ++i) {
    if (equals(v, n, choices[i])) return i;
  }
  fail(key, cstr_len(key), "is not one of the allowed values", v, n);
  return fallback;
}

bool Cmdline::check_known(const char* const* known, size_t count) {
  bool all_known = true;
  for_each_token(text_, len_, [&](const char* k, size_t k_len, const char* v, size_t v_len) {
    for (size_t i = 0; i < count; ++i) {
      if (equals(k, k_len, known[i])) return;
    }
    all_known = false;
    fail(k, k_len, "is not a known parameter", v, v_len);
  });
  return all_known;
}

void Cmdline::fail(const char* key, size_t key_len, const char* what, const char* value,
                   size_t value_len) {
  if (!ok()) return;  // keep the first error
  char k[32];
  char v[48];
  copy_bounded(k, sizeof(k), key, key_len);
  copy_bounded(v, sizeof(v), value, value_len);
  snprintf(error_, sizeof(error_), "cmdline: %s=\"%s\" %s", k, v, what);
}

}  // namespace guest
