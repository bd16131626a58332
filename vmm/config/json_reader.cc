#include "vmm/config/json_reader.h"

#include <algorithm>
#include <sstream>

namespace labyrinth::vmm::json_reader {

std::string_view kind_name(json::kind k) {
  switch (k) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number with a fraction";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "unknown";
}

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {  // escaped too, so an escape in the output is never ambiguous
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  return out;
}

std::string position(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + " column " + std::to_string(col);
}

std::string Section::field(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

// Keys and values are echoed escaped: an error stays one printable line whatever the
// file holds (a key or string with a newline or a terminal escape sequence).
void Section::fail(std::string_view key, const std::string& detail) {
  if (!err_) err_ = ConfigError{printable(field(key)), printable(detail)};
}

void Section::allow_only(std::initializer_list<std::string_view> keys) {
  for (const auto& kv : obj_) {
    const std::string_view k = kv.key();
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) fail(k, "unknown key");
  }
}

const json::value* Section::get(std::string_view key, bool required) {
  if (!ok()) return nullptr;  // an earlier error: read nothing more
  const json::value* v = obj_.if_contains(key);
  if (v == nullptr && required) fail(key, "missing (required)");
  return v;
}

// The value of key if it has kind k; otherwise nullptr, and a message naming both kinds
// unless the key is absent.
const json::value* Section::typed(std::string_view key, bool required, json::kind k) {
  const json::value* v = get(key, required);
  if (v == nullptr || v->kind() == k) return v;
  fail(key, "expected " + std::string(kind_name(k)) + ", got " + std::string(kind_name(v->kind())));
  return nullptr;
}

const json::object* Section::object(std::string_view key, bool required) {
  const json::value* v = typed(key, required, json::kind::object);
  return v == nullptr ? nullptr : &v->get_object();
}

const json::array* Section::array(std::string_view key, bool required) {
  const json::value* v = typed(key, required, json::kind::array);
  return v == nullptr ? nullptr : &v->get_array();
}

void Section::string(std::string_view key, bool required, std::string& out) {
  if (const json::value* v = typed(key, required, json::kind::string)) {
    out = std::string(v->get_string());
  }
}

void Section::boolean(std::string_view key, bool required, bool& out) {
  if (const json::value* v = typed(key, required, json::kind::bool_)) out = v->get_bool();
}

void Section::integer(std::string_view key, bool required, uint64_t lo, uint64_t hi,
                      uint32_t& out) {
  const json::value* v = get(key, required);
  if (v == nullptr) return;
  // Integers above INT64_MAX arrive as uint64: clamped to INT64_MAX they still fail every
  // range, and n stays signed so that a negative value is echoed as such ("got -5").
  int64_t n = 0;
  if (v->is_int64()) {
    n = v->get_int64();
  } else if (v->is_uint64()) {
    n = v->get_uint64() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                           : static_cast<int64_t>(v->get_uint64());
  } else {
    fail(key, std::string("expected an integer, got ") + std::string(kind_name(v->kind())));
    return;
  }
  if (n < 0 || static_cast<uint64_t>(n) < lo || static_cast<uint64_t>(n) > hi) {
    fail(key, "must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                  std::to_string(n));
    return;
  }
  out = static_cast<uint32_t>(n);
}

void Section::number(std::string_view key, bool required, double lo, double hi, double& out) {
  const json::value* v = get(key, required);
  if (v == nullptr) return;
  double d = 0;
  if (v->is_double())
    d = v->get_double();
  else if (v->is_int64())
    d = static_cast<double>(v->get_int64());
  else if (v->is_uint64())
    d = static_cast<double>(v->get_uint64());
  else {
    fail(key, std::string("expected a number, got ") + std::string(kind_name(v->kind())));
    return;
  }
  // Negated so that a NaN would fail too.
  if (!(d >= lo && d <= hi)) {
    std::ostringstream msg;
    msg << "must be " << lo << ".." << hi << ", got " << d;
    fail(key, msg.str());
    return;
  }
  out = d;
}

}  // namespace labyrinth::vmm::json_reader
