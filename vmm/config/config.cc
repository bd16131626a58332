// parse_config: the order of loading — the JSON text, each section's parser
// (parsers.h), the memory layout, then pre-flight (preflight.h).
#include "vmm/config/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include "vmm/config/json_reader.h"
#include "vmm/config/parsers.h"
#include "vmm/config/preflight.h"

namespace labyrinth::vmm {

namespace json = boost::json;

namespace {

// The guest memory map, computed here once: pre-flight plans a Linux boot on it and the
// machine builds on it. The parsers' ranges (RAM, the pool's 16 GiB) keep it computable
// for any file that parsed; the check stays for limits a caller may widen.
void compute_layout(Config& cfg, std::optional<ConfigError>& err) {
  if (err) return;
  auto layout = MemoryLayout::compute(uint64_t{cfg.mem_size_mib} * kMiB, cfg.pool.max_bytes());
  if (!layout) {
    err = ConfigError{"machine-config.mem_size_mib", "no memory map for this size"};
    return;
  }
  cfg.layout = std::move(*layout);
}

// "cpu-config": "FILE": the template read and parsed as if it stood there, its messages
// naming the file. Reading a file is pre-flight's kind of work (check_kernel_file).
void load_cpu_template(Config& cfg, std::optional<ConfigError>& err) {
  if (err || cfg.cpu_config_path.empty()) return;
  const std::string& path = cfg.cpu_config_path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err = ConfigError{"cpu-config", "cannot read \"" + json_reader::printable(path) +
                                        "\": " + std::strerror(errno)};
    return;
  }
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object()) {
    err = ConfigError{"cpu-config", json_reader::printable(path) + ": " +
                                        (ec ? "invalid JSON: " + ec.message()
                                            : std::string("the template must be a JSON object"))};
    return;
  }
  parse_cpu_template(v.get_object(), "cpu-config", cfg.cpu_template, err);
  if (err) err->detail += " (in " + json_reader::printable(path) + ")";
}

}  // namespace

ConfigLimits ConfigLimits::host_limits() {
  ConfigLimits l;
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    const uint64_t host_mib = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) >> 20;
    l.max_mem_mib = static_cast<uint32_t>(std::min<uint64_t>(l.max_mem_mib, host_mib));
  }
  return l;
}

std::expected<Config, ConfigError> parse_config(std::string_view text, const ConfigLimits& limits) {
  // A stream parser, for the byte offset of a syntax error ("line L column C").
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t used = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return std::unexpected(ConfigError{
        "", "invalid JSON at " + json_reader::position(text, used) + ": " + ec.message()});
  }
  const json::value root = parser.release();
  if (!root.is_object()) {
    return std::unexpected(ConfigError{"", "the top level must be a JSON object"});
  }
  Config cfg;
  std::optional<ConfigError> err;
  json_reader::Section top(root.get_object(), "", err);
  top.allow_only(
      {"boot-source", "machine-config", "network-interfaces", "serial", "labyrinth", "cpu-config"});
  if (const json::object* o = top.object("boot-source", true)) {
    parse_boot_source(*o, cfg, err);
  }
  if (const json::object* o = top.object("machine-config", false)) {
    parse_machine(*o, cfg, limits, err);
  }
  if (const json::array* a = top.array("network-interfaces", false)) {
    parse_network_interfaces(*a, cfg.network_interfaces, err);
  }
  if (const json::object* o = top.object("serial", false)) parse_serial(*o, cfg, err);
  if (const json::object* o = top.object("labyrinth", false)) parse_labyrinth(*o, cfg, err);
  if (const json::value* v = top.get("cpu-config", false)) parse_cpu_config(*v, cfg, err);
  if (limits.check_kernel_file) load_cpu_template(cfg, err);
  compute_layout(cfg, err);
  if (!err && limits.check_kernel_file) err = preflight(cfg);
  if (err) return std::unexpected(*err);
  return cfg;
}

std::expected<Config, ConfigError> load_config(const std::string& path,
                                               const ConfigLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(
        ConfigError{"", "cannot read \"" + path + "\": " + std::strerror(errno)});
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto cfg = parse_config(text.str(), limits);
  // An error about the file as a whole names no field: it names the file instead.
  if (!cfg && cfg.error().field.empty()) cfg.error().detail = path + ": " + cfg.error().detail;
  return cfg;
}

}  // namespace labyrinth::vmm
