#include "vmm/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include "devices/virtio/net/tap.h"
#include "guest/abi/boot_info.h"
#include "guest/abi/lnic.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/fd.h"
#include "vmm/memory/layout.h"

namespace labyrinth::vmm {

namespace json = boost::json;

namespace {

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

// text with control characters (< 0x20, 0x7F) and backslashes escaped as in C.
std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
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

// Reads the keys of one JSON object, checking names and types; the first problem is
// kept and every later call becomes a no-op, so parse_* functions read straight down.
class Section {
 public:
  Section(const json::object& obj, std::string path, std::optional<ConfigError>& err)
      : obj_(obj), path_(std::move(path)), err_(err) {}

  std::string field(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  // Keys and values are echoed escaped: an error stays one printable line whatever the
  // file holds (a key or string with a newline or a terminal escape sequence).
  void fail(std::string_view key, const std::string& detail) {
    if (!err_) err_ = ConfigError{printable(field(key)), printable(detail)};
  }
  bool ok() const { return !err_; }

  void allow_only(std::initializer_list<std::string_view> keys) {
    for (const auto& kv : obj_) {
      const std::string_view k = kv.key();
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) fail(k, "unknown key");
    }
  }

  const json::value* get(std::string_view key, bool required) {
    if (!ok()) return nullptr;
    const json::value* v = obj_.if_contains(key);
    if (v == nullptr && required) fail(key, "missing (required)");
    return v;
  }

  const json::object* object(std::string_view key, bool required) {
    const json::value* v = get(key, required);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      fail(key, std::string("expected an object, got ") + std::string(kind_name(v->kind())));
      return nullptr;
    }
    return &v->get_object();
  }

  void string(std::string_view key, bool required, std::string& out) {
    const json::value* v = get(key, required);
    if (v == nullptr) return;
    if (!v->is_string()) {
      fail(key, std::string("expected a string, got ") + std::string(kind_name(v->kind())));
      return;
    }
    out = std::string(v->get_string());
  }

  void integer(std::string_view key, bool required, uint64_t lo, uint64_t hi, uint32_t& out) {
    const json::value* v = get(key, required);
    if (v == nullptr) return;
    int64_t n = 0;
    if (v->is_int64()) {
      n = v->get_int64();
    } else if (v->is_uint64()) {
      n = v->get_uint64() > static_cast<uint64_t>(INT64_MAX)
              ? INT64_MAX
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

  void number(std::string_view key, bool required, double lo, double hi, double& out) {
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
    if (!(d >= lo && d <= hi)) {
      std::ostringstream msg;
      msg << "must be " << lo << ".." << hi << ", got " << d;
      fail(key, msg.str());
      return;
    }
    out = d;
  }

  const json::array* array(std::string_view key, bool required) {
    const json::value* v = get(key, required);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      fail(key, std::string("expected an array, got ") + std::string(kind_name(v->kind())));
      return nullptr;
    }
    return &v->get_array();
  }

 private:
  const json::object& obj_;
  std::string path_;
  std::optional<ConfigError>& err_;
};

// Opens the kernel (and initramfs) and checks that they can boot with this configuration:
// a Labyrinth test guest (an identity-linked ELF, checked in full by the loader), or a
// Linux bzImage / vmlinux whose setup header, command line and initramfs fit the
// kernel's limits and the memory map (linux_loader.h).
void check_boot(const Config& cfg, std::optional<ConfigError>& err) {
  if (err) return;
  auto fail = [&](std::string field, std::string detail) {
    err = ConfigError{std::move(field), std::move(detail)};
  };
  const std::string& path = cfg.kernel_image_path;
  std::string why;
  auto image = read_file(path, &why);
  if (!image) return fail("boot-source.kernel_image_path", why);
  const bool elf = image->size() >= 4 && std::memcmp(image->data(),
                                                     "\x7F"
                                                     "ELF",
                                                     4) == 0;
  if (!is_linux_kernel(*image)) {
    if (!elf) {
      fail("boot-source.kernel_image_path",
           "\"" + path + "\" is neither an ELF file nor a Linux bzImage (no \"HdrS\" at 0x202)");
    } else if (!cfg.initrd_path.empty()) {
      fail("boot-source.initrd_path", "only a Linux kernel takes an initramfs");
    }
    return;
  }
  auto kernel = parse_linux_kernel(*image);
  if (!kernel) return fail(kernel.error().field, kernel.error().detail);
  if (!cfg.lnics.empty()) {
    return fail("labyrinth.lnics", "Linux guests have no lnic driver yet");
  }
  uint64_t initrd_size = 0;
  if (!cfg.initrd_path.empty()) {
    struct stat st{};
    if (::stat(cfg.initrd_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail("boot-source.initrd_path",
                  "cannot open \"" + cfg.initrd_path + "\" as a regular file");
    }
    initrd_size = static_cast<uint64_t>(st.st_size);
    if (initrd_size > kMaxImageBytes) {
      return fail("boot-source.initrd_path", std::to_string(initrd_size) + " bytes: larger than " +
                                                 std::to_string(kMaxImageBytes >> 20) + " MiB");
    }
  }
  auto layout = MemoryLayout::compute(uint64_t{cfg.mem_size_mib} << 20, cfg.pool.max_bytes());
  if (!layout) return fail("machine-config.mem_size_mib", "no memory map for this size");
  auto plan = plan_linux_boot(*kernel, *layout, initrd_size, cfg.boot_args);
  if (!plan) return fail(plan.error().field, plan.error().detail);
}

void parse_boot_source(const json::object& obj, Config& cfg, std::optional<ConfigError>& err) {
  Section s(obj, "boot-source", err);
  s.allow_only({"kernel_image_path", "initrd_path", "boot_args"});
  s.string("kernel_image_path", true, cfg.kernel_image_path);
  s.string("initrd_path", false, cfg.initrd_path);
  s.string("boot_args", false, cfg.boot_args);
  if (!s.ok()) return;
  if (cfg.kernel_image_path.empty()) return s.fail("kernel_image_path", "must not be empty");
  if (cfg.boot_args.size() > kMaxCmdline) {
    return s.fail("boot_args", "longer than " + std::to_string(kMaxCmdline) + " bytes");
  }
}

void parse_machine(const json::object& obj, Config& cfg, const ConfigLimits& limits,
                   std::optional<ConfigError>& err) {
  Section s(obj, "machine-config", err);
  s.allow_only({"vcpu_count", "mem_size_mib"});
  s.integer("vcpu_count", false, 1, limits.max_vcpus, cfg.vcpu_count);
  s.integer("mem_size_mib", false, 4, limits.max_mem_mib, cfg.mem_size_mib);
  if (s.ok() && cfg.mem_size_mib % 2 != 0) {
    s.fail("mem_size_mib",
           "must be a multiple of 2 (2 MiB pages), got " + std::to_string(cfg.mem_size_mib));
  }
}

void parse_serial(const json::object& obj, Config& cfg, std::optional<ConfigError>& err) {
  Section s(obj, "serial", err);
  s.allow_only({"output", "input"});
  s.string("output", false, cfg.serial.output);
  std::string input = "stdin";
  s.string("input", false, input);
  if (!s.ok()) return;
  if (cfg.serial.output.empty()) return s.fail("output", "must be \"stdout\" or a file path");
  if (input != "stdin" && input != "none") {
    return s.fail("input", "must be \"stdin\" or \"none\", got \"" + input + "\"");
  }
  cfg.serial.read_stdin = input == "stdin";
}

void parse_pool(const json::object& obj, PoolSettings& p, std::optional<ConfigError>& err) {
  Section s(obj, "labyrinth.pool", err);
  s.allow_only({"chunk_size_kib", "initial_chunks", "max_chunks", "backing", "min_pages",
                "low_pages", "high_pages", "zero_policy"});
  s.integer("chunk_size_kib", false, 4, 1 << 20, p.chunk_size_kib);
  s.integer("max_chunks", false, 1, 4096, p.max_chunks);
  s.integer("initial_chunks", false, 0, 4096, p.initial_chunks);
  s.string("backing", false, p.backing);
  s.integer("min_pages", false, 0, UINT32_MAX, p.min_pages);
  s.integer("low_pages", false, 0, UINT32_MAX, p.low_pages);
  s.integer("high_pages", false, 0, UINT32_MAX, p.high_pages);
  s.string("zero_policy", false, p.zero_policy);
  if (!s.ok()) return;
  if (p.zero_policy != "worker" && p.zero_policy != "on_free") {
    return s.fail("zero_policy",
                  "must be \"worker\" or \"on_free\", got \"" + p.zero_policy + "\"");
  }
  if (p.backing != "4k" && p.backing != "thp" && p.backing != "hugetlb") {
    return s.fail("backing", "must be \"4k\", \"thp\" or \"hugetlb\", got \"" + p.backing + "\"");
  }
  const uint32_t align = p.backing == "4k" ? 4 : 2048;
  if (p.chunk_size_kib % align != 0) {
    return s.fail("chunk_size_kib", "must be a multiple of " + std::to_string(align) +
                                        " for backing \"" + p.backing + "\", got " +
                                        std::to_string(p.chunk_size_kib));
  }
  if (p.initial_chunks > p.max_chunks) {
    return s.fail("initial_chunks", "must be at most max_chunks (" + std::to_string(p.max_chunks) +
                                        "), got " + std::to_string(p.initial_chunks));
  }
  if (p.max_bytes() > 16ull << 30) {
    return s.fail("max_chunks", "chunk_size_kib * max_chunks must be at most 16 GiB");
  }
  if (p.min_pages > p.low_pages || p.low_pages > p.high_pages) {
    return s.fail("low_pages", "watermarks must satisfy min_pages <= low_pages <= high_pages");
  }
}

bool parse_mac(const std::string& text, std::array<uint8_t, 6>& mac) {
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &tail) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  return (mac[0] & 1) == 0;  // a unicast address
}

void parse_backend(const json::object& obj, const std::string& path,
                   devices::lnic::BackendConfig& b, std::optional<ConfigError>& err) {
  Section s(obj, path, err);
  std::string type;
  s.string("type", true, type);
  if (!s.ok()) return;
  using devices::lnic::BackendType;
  if (type == "loopback") {
    b.type = BackendType::loopback;
    s.allow_only({"type"});
  } else if (type == "pktgen") {
    b.type = BackendType::pktgen;
    s.allow_only(
        {"type", "rate_pps", "frame_size", "burst", "duration_s", "count", "pattern", "spin_us"});
    auto& p = b.pktgen;
    s.number("rate_pps", false, 1, 20e6, p.rate_pps);
    s.integer("frame_size", false, sizeof(lnic_pktgen_header), LNIC_FRAME_MAX, p.frame_size);
    s.integer("burst", false, 1, 1024, p.burst);
    s.number("duration_s", false, 0, 86400, p.duration_s);
    uint32_t count = 0;
    s.integer("count", false, 0, UINT32_MAX, count);
    p.count = count;
    uint32_t pattern = p.pattern;
    s.integer("pattern", false, 0, 255, pattern);
    p.pattern = static_cast<uint8_t>(pattern);
    s.integer("spin_us", false, 0, 100000, p.spin_us);
  } else if (type == "udp") {
    b.type = BackendType::udp;
    s.allow_only({"type", "local_port", "peer_port"});
    uint32_t local = 0, peer = 0;
    s.integer("local_port", true, 1, 65535, local);
    s.integer("peer_port", true, 1, 65535, peer);
    b.udp.local_port = static_cast<uint16_t>(local);
    b.udp.peer_port = static_cast<uint16_t>(peer);
  } else if (type == "tap") {
    b.type = BackendType::tap;
    s.allow_only({"type", "host_dev_name"});
    s.string("host_dev_name", true, b.tap.ifname);
    if (s.ok() && (b.tap.ifname.empty() || b.tap.ifname.size() > 15)) {
      s.fail("host_dev_name", "must be 1..15 characters (an interface name)");
    }
  } else {
    s.fail("type", "must be \"loopback\", \"pktgen\", \"udp\" or \"tap\", got \"" + type + "\"");
  }
}

void parse_lnics(const json::array& arr, std::vector<LnicSettings>& out,
                 std::optional<ConfigError>& err) {
  if (arr.size() > LABYRINTH_MAX_DEVICES) {
    if (!err)
      err = ConfigError{"labyrinth.lnics",
                        "at most " + std::to_string(LABYRINTH_MAX_DEVICES) + " lnics"};
    return;
  }
  for (size_t i = 0; i < arr.size() && !err; ++i) {
    const std::string path = "labyrinth.lnics[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) {
      err = ConfigError{
          path, std::string("expected an object, got ") + std::string(kind_name(arr[i].kind()))};
      return;
    }
    Section s(arr[i].get_object(), path, err);
    s.allow_only({"id", "guest_mac", "backend", "test_inject_delay_ns"});
    LnicSettings n;
    n.id = "lnic" + std::to_string(i);
    s.string("id", false, n.id);
    char mac_buf[32];
    (void)std::snprintf(mac_buf, sizeof mac_buf, "02:4c:42:00:00:%02x",
                        static_cast<unsigned>((i + 1) & 0xFF));
    std::string mac = mac_buf;
    s.string("guest_mac", false, mac);
    if (s.ok() && !parse_mac(mac, n.mac)) {
      s.fail("guest_mac", "must be a unicast MAC like 02:4c:42:00:00:01, got \"" + mac + "\"");
    }
    for (const LnicSettings& other : out) {
      if (s.ok() && other.id == n.id) s.fail("id", "duplicate id \"" + n.id + "\"");
    }
    uint32_t delay = 0;
    s.integer("test_inject_delay_ns", false, 0, 1'000'000'000, delay);
    n.test_inject_delay_ns = delay;
    if (const json::object* b = s.object("backend", true)) {
      parse_backend(*b, s.field("backend"), n.backend, err);
    }
    out.push_back(std::move(n));
  }
}

void parse_network_interfaces(const json::array& arr, std::vector<NetworkInterface>& out,
                              std::optional<ConfigError>& err) {
  if (arr.size() > kMaxNetworkInterfaces) {
    if (!err) {
      err = ConfigError{"network-interfaces",
                        "at most " + std::to_string(kMaxNetworkInterfaces) + " interfaces"};
    }
    return;
  }
  for (size_t i = 0; i < arr.size() && !err; ++i) {
    const std::string path = "network-interfaces[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) {
      err = ConfigError{
          path, std::string("expected an object, got ") + std::string(kind_name(arr[i].kind()))};
      return;
    }
    Section s(arr[i].get_object(), path, err);
    s.allow_only({"iface_id", "host_dev_name", "guest_mac"});
    NetworkInterface n;
    s.string("iface_id", true, n.iface_id);
    s.string("host_dev_name", true, n.host_dev_name);
    char mac_buf[32];
    (void)std::snprintf(mac_buf, sizeof mac_buf, "06:00:ac:10:00:%02x",
                        static_cast<unsigned>((i + 2) & 0xFF));
    std::string mac = mac_buf;
    s.string("guest_mac", false, mac);
    if (s.ok() && n.iface_id.empty()) s.fail("iface_id", "must not be empty");
    if (s.ok() && (n.host_dev_name.empty() || n.host_dev_name.size() > 15)) {
      s.fail("host_dev_name",
             "must be 1..15 characters (an interface name), got \"" + n.host_dev_name + "\"");
    }
    if (s.ok() && !parse_mac(mac, n.guest_mac)) {
      s.fail("guest_mac", "must be a unicast MAC like 06:00:ac:10:00:02, got \"" + mac + "\"");
    }
    for (const NetworkInterface& other : out) {
      if (s.ok() && other.iface_id == n.iface_id) {
        s.fail("iface_id", "duplicate iface_id \"" + n.iface_id + "\"");
      }
      if (s.ok() && other.host_dev_name == n.host_dev_name) {
        s.fail("host_dev_name", "\"" + n.host_dev_name + "\" is already used by iface_id \"" +
                                    other.iface_id + "\"");
      }
    }
    out.push_back(std::move(n));
  }
}

// Each TAP device can be opened (or created: it goes away again when closed).
void check_taps(const Config& cfg, std::optional<ConfigError>& err) {
  for (size_t i = 0; i < cfg.network_interfaces.size() && !err; ++i) {
    auto tap = devices::virtio::open_tap(cfg.network_interfaces[i].host_dev_name);
    if (!tap) {
      err = ConfigError{"network-interfaces[" + std::to_string(i) + "].host_dev_name",
                        tap.error().detail};
    }
  }
}

void parse_labyrinth(const json::object& obj, Config& cfg, std::optional<ConfigError>& err) {
  Section s(obj, "labyrinth", err);
  s.allow_only({"pool", "lnics"});
  if (const json::object* pool = s.object("pool", false)) parse_pool(*pool, cfg.pool, err);
  if (const json::array* lnics = s.array("lnics", false)) parse_lnics(*lnics, cfg.lnics, err);
}

// "line L column C" of byte offset in text.
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
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t used = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return std::unexpected(
        ConfigError{"", "invalid JSON at " + position(text, used) + ": " + ec.message()});
  }
  const json::value root = parser.release();
  if (!root.is_object()) {
    return std::unexpected(ConfigError{"", "the top level must be a JSON object"});
  }
  Config cfg;
  std::optional<ConfigError> err;
  Section top(root.get_object(), "", err);
  top.allow_only({"boot-source", "machine-config", "network-interfaces", "serial", "labyrinth"});
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
  if (limits.check_kernel_file) check_boot(cfg, err);
  if (limits.check_kernel_file) check_taps(cfg, err);
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
  if (!cfg && cfg.error().field.empty()) cfg.error().detail = path + ": " + cfg.error().detail;
  return cfg;
}

}  // namespace labyrinth::vmm
