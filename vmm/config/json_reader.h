// vmm/config/json_reader.h — field access into a parsed JSON document, for the config
// parsers (internal to vmm/config/).
//
// A Section reads the keys of one JSON object and checks their names, types and ranges;
// a problem becomes a ConfigError naming the field by its dotted path
// ("machine-config.vcpu_count: must be 1..32, got 64"). Only the first problem is kept
// and every later call is then a no-op, so a parser reads straight down without
// checking after each key:
//
//   Section s(obj, "machine-config", err);
//   s.allow_only({"vcpu_count", "mem_size_mib"});
//   s.integer("vcpu_count", /*required=*/false, 1, 32, cfg.vcpu_count);
//   if (s.ok() && cfg.vcpu_count == 3) s.fail("vcpu_count", "not three");
//
// Keys and values echoed in a message are escaped (printable()): whatever the file holds,
// an error stays one printable line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "vmm/config/config.h"

namespace labyrinth::vmm::json_reader {

namespace json = boost::json;

// "a string", "an integer", ...: the kind of a value as a message names it.
std::string_view kind_name(json::kind k);
// text with control characters (< 0x20, 0x7F) and backslashes escaped as in C.
std::string printable(std::string_view text);
// "line L column C" of a byte offset in text.
std::string position(std::string_view text, size_t offset);

class Section {
 public:
  // path: the object's dotted path ("" for the top level); err: shared by every Section
  // of one parse, so the first problem anywhere wins.
  Section(const json::object& obj, std::string path, std::optional<ConfigError>& err)
      : obj_(obj), path_(std::move(path)), err_(err) {}

  std::string field(std::string_view key) const;
  void fail(std::string_view key, const std::string& detail);
  bool ok() const { return !err_; }

  // Every key of the object not in keys is an error ("unknown key").
  void allow_only(std::initializer_list<std::string_view> keys);

  // Each reader leaves out untouched when the key is absent (its default stands) or
  // wrong; absent and required is an error. The value range is inclusive.
  const json::value* get(std::string_view key, bool required);
  const json::object* object(std::string_view key, bool required);
  const json::array* array(std::string_view key, bool required);
  void string(std::string_view key, bool required, std::string& out);
  void integer(std::string_view key, bool required, uint64_t lo, uint64_t hi, uint32_t& out);
  void number(std::string_view key, bool required, double lo, double hi, double& out);
  void boolean(std::string_view key, bool required, bool& out);

 private:
  const json::value* typed(std::string_view key, bool required, json::kind k);

  const json::object& obj_;
  std::string path_;
  std::optional<ConfigError>& err_;
};

// Walks an array of objects named path ("labyrinth.lnics"): at most max entries ("at
// most 8 <noun>"), each an object, read by entry(section of path[i], i). Stops at the
// first error, so an entry may compare itself with the ones before it.
template <typename Entry>
void parse_list(const json::array& arr, const std::string& path, size_t max, std::string_view noun,
                std::optional<ConfigError>& err, Entry&& entry) {
  if (arr.size() > max) {
    if (!err) err = ConfigError{path, "at most " + std::to_string(max) + " " + std::string(noun)};
    return;
  }
  for (size_t i = 0; i < arr.size() && !err; ++i) {
    const std::string item = path + "[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) {
      err = ConfigError{
          item, std::string("expected an object, got ") + std::string(kind_name(arr[i].kind()))};
      return;
    }
    Section s(arr[i].get_object(), item, err);
    entry(s, i);
  }
}

}  // namespace labyrinth::vmm::json_reader
