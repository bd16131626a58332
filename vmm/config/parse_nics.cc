// The NIC sections: labyrinth.lnics (with their backends) and network-interfaces
// (virtio-net). Both are arrays of objects read the same way (parse_list) with MACs
// read the same way (mac_text, check_mac); what differs is in the two entry parsers.
#include <array>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "guest/abi/lnic.h"
#include "vmm/config/json_reader.h"
#include "vmm/config/parsers.h"

namespace labyrinth::vmm {

namespace json = boost::json;
using json_reader::parse_list;
using json_reader::Section;

namespace {

constexpr size_t kMaxHostile = 16;

// The MAC text of entry i: "guest_mac" if given, else prefix + the byte first + i (each
// entry's default differs in its last byte, so defaults never collide).
std::string mac_text(Section& s, const char* prefix, unsigned first, size_t i) {
  char buf[32];
  (void)std::snprintf(buf, sizeof buf, "%s%02x", prefix, static_cast<unsigned>((i + first) & 0xFF));
  std::string mac = buf;
  s.string("guest_mac", false, mac);
  return mac;
}

// Parses "aa:bb:cc:dd:ee:ff" into mac; false unless it is exactly that and unicast (the
// guest would otherwise own a multicast address).
bool parse_mac(const std::string& text, std::array<uint8_t, 6>& mac) {
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                  &b[5], &tail) != 6) {
    return false;
  }
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(b[i]);
  return (mac[0] & 1) == 0;
}

// Fails guest_mac unless text parses; the message shows the section's first default.
void check_mac(Section& s, const std::string& text, const char* prefix, unsigned first,
               std::array<uint8_t, 6>& mac) {
  if (!s.ok() || parse_mac(text, mac)) return;
  char example[32];
  (void)std::snprintf(example, sizeof example, "%s%02x", prefix, first);
  s.fail("guest_mac",
         std::string("must be a unicast MAC like ") + example + ", got \"" + text + "\"");
}

// One lnic backend: "type" chooses which other keys are allowed.
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
    // A generated frame carries its pktgen header (sequence, scheduled time).
    s.integer("frame_size", false, sizeof(lnic_pktgen_header), LNIC_FRAME_MAX, p.frame_size);
    s.integer("burst", false, 1, 1024, p.burst);
    s.number("duration_s", false, 0, 86400, p.duration_s);
    // Read through uint32_t: the reader's one integer width (count is 64-bit, pattern 8).
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

}  // namespace

void parse_lnics(const json::array& arr, std::vector<LnicSettings>& out,
                 std::optional<ConfigError>& err) {
  parse_list(
      arr, "labyrinth.lnics", LABYRINTH_MAX_DEVICES, "lnics", err, [&](Section& s, size_t i) {
        s.allow_only({"id", "guest_mac", "backend", "test_inject_delay_ns", "test_hostile"});
        LnicSettings n;
        n.id = "lnic" + std::to_string(i);
        s.string("id", false, n.id);
        const std::string mac = mac_text(s, "02:4c:42:00:00:", 1, i);
        check_mac(s, mac, "02:4c:42:00:00:", 1, n.mac);
        for (const LnicSettings& other : out) {
          if (s.ok() && other.id == n.id) s.fail("id", "duplicate id \"" + n.id + "\"");
        }
        uint32_t delay = 0;
        s.integer("test_inject_delay_ns", false, 0, 1'000'000'000, delay);
        n.test_inject_delay_ns = delay;
        // Test only: one hostile kind per activation of the lnic, in order.
        if (const json::array* kinds = s.array("test_hostile", false)) {
          if (kinds->size() > kMaxHostile) {
            s.fail("test_hostile", "at most " + std::to_string(kMaxHostile) + " entries");
          }
          for (size_t k = 0; k < kinds->size() && s.ok(); ++k) {
            const json::value& v = (*kinds)[k];
            const auto kind =
                v.is_string() ? devices::lnic::hostile_kind_from(std::string_view(v.get_string()))
                              : std::nullopt;
            if (!kind) {
              s.fail("test_hostile", "entry " + std::to_string(k) +
                                         " must be \"bad_address\", \"bad_length\", "
                                         "\"page_twice\" or \"rx_prod_beyond_ring\"");
            } else {
              n.test_hostile.push_back(*kind);
            }
          }
        }
        if (const json::object* b = s.object("backend", true)) {
          parse_backend(*b, s.field("backend"), n.backend, err);
        }
        out.push_back(std::move(n));
      });
}

void parse_network_interfaces(const json::array& arr, std::vector<NetworkInterface>& out,
                              std::optional<ConfigError>& err) {
  parse_list(
      arr, "network-interfaces", kMaxNetworkInterfaces, "interfaces", err,
      [&](Section& s, size_t i) {
        s.allow_only({"iface_id", "host_dev_name", "guest_mac"});
        NetworkInterface n;
        s.string("iface_id", true, n.iface_id);
        s.string("host_dev_name", true, n.host_dev_name);
        const std::string mac = mac_text(s, "06:00:ac:10:00:", 2, i);
        if (s.ok() && n.iface_id.empty()) s.fail("iface_id", "must not be empty");
        if (s.ok() && (n.host_dev_name.empty() || n.host_dev_name.size() > 15)) {
          s.fail("host_dev_name",
                 "must be 1..15 characters (an interface name), got \"" + n.host_dev_name + "\"");
        }
        check_mac(s, mac, "06:00:ac:10:00:", 2, n.guest_mac);
        // An iface_id names one device; two devices on one TAP would steal each
        // other's frames.
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
      });
}

}  // namespace labyrinth::vmm
