// tests/fuzz/config_fuzz.cc — the whole configuration file through parse_config().
//
// Invariants: every input yields a Config or a ConfigError (never a crash, never an
// exception); an error is one printable line naming a known field (or the file); an
// accepted Config holds only values the validator promises (ranges, enumerations,
// watermark order, unique lnic ids, unicast MACs) and the memory map of its sizes.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "guest/abi/boot_info.h"
#include "guest/abi/lnic.h"
#include "tests/fuzz/fuzz_check.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/config/config.h"

namespace {

using labyrinth::vmm::Config;
using labyrinth::vmm::ConfigError;
using labyrinth::vmm::ConfigLimits;

bool one_printable_line(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return false;  // newline, escape sequences, NUL, ...
  }
  return true;
}

void check_error(const ConfigError& e) {
  const std::string msg = e.message();
  FUZZ_CHECK(!e.detail.empty(), "empty error detail (field '%s')", e.field.c_str());
  FUZZ_CHECK(one_printable_line(msg), "error is not one printable line: %zu bytes", msg.size());
  if (!e.field.empty()) {
    static constexpr std::string_view kSections[] = {
        "boot-source", "machine-config", "serial", "network-interfaces", "labyrinth", "cpu-config"};
    bool known = false;
    for (auto s : kSections) known = known || e.field.starts_with(s);
    // An unknown top-level key is named as itself (escaped).
    known = known || e.detail == "unknown key";
    FUZZ_CHECK(known, "error names no known field: %s", msg.c_str());
  }
}

void check_config(const Config& c, const ConfigLimits& l) {
  FUZZ_CHECK(!c.kernel_image_path.empty(), "accepted an empty kernel path");
  FUZZ_CHECK(c.boot_args.size() <= labyrinth::vmm::kMaxCmdline, "boot_args %zu bytes",
             c.boot_args.size());
  FUZZ_CHECK(c.vcpu_count >= 1 && c.vcpu_count <= l.max_vcpus, "vcpu_count %u", c.vcpu_count);
  FUZZ_CHECK(c.mem_size_mib >= 4 && c.mem_size_mib <= l.max_mem_mib && c.mem_size_mib % 2 == 0,
             "mem_size_mib %u", c.mem_size_mib);
  FUZZ_CHECK(!c.serial.output.empty(), "empty serial output");
  const auto& p = c.pool;
  using labyrinth::alloc::Backing;
  using labyrinth::alloc::ZeroPolicy;
  FUZZ_CHECK(p.backing == Backing::small_pages || p.backing == Backing::thp ||
                 p.backing == Backing::hugetlb,
             "backing %d", static_cast<int>(p.backing));
  FUZZ_CHECK(p.zero_policy == ZeroPolicy::worker || p.zero_policy == ZeroPolicy::on_free,
             "zero_policy %d", static_cast<int>(p.zero_policy));
  FUZZ_CHECK(p.chunk_size_kib >= 4 &&
                 p.chunk_size_kib % (p.backing == Backing::small_pages ? 4 : 2048) == 0,
             "chunk_size_kib %u", p.chunk_size_kib);
  FUZZ_CHECK(p.max_chunks >= 1 && p.initial_chunks <= p.max_chunks, "chunks %u/%u",
             p.initial_chunks, p.max_chunks);
  FUZZ_CHECK(p.max_bytes() <= (16ull << 30), "pool max bytes %llu",
             static_cast<unsigned long long>(p.max_bytes()));
  FUZZ_CHECK(p.min_pages <= p.low_pages && p.low_pages <= p.high_pages, "watermarks");
  // The memory map the machine builds on is the one of these sizes.
  FUZZ_CHECK(c.layout.ram_bytes == uint64_t{c.mem_size_mib} << 20 &&
                 c.layout.pool.size >= p.max_bytes() && !c.layout.ram.empty(),
             "layout of %u MiB", c.mem_size_mib);
  // The CPU template: every forced bit inside its filter, KVM's three flag bits only.
  for (const auto& m : c.cpu_template.cpuid_modifiers) {
    FUZZ_CHECK(m.flags <= 7, "cpuid flags %u", m.flags);
    for (const auto& r : m.modifiers) {
      FUZZ_CHECK((r.bitmap.bits & ~r.bitmap.filter) == 0, "bitmap bits outside its filter");
    }
  }
  FUZZ_CHECK(c.lnics.size() <= LABYRINTH_MAX_DEVICES, "%zu lnics", c.lnics.size());
  std::set<std::string> ids;
  for (const auto& n : c.lnics) {
    FUZZ_CHECK(ids.insert(n.id).second, "duplicate lnic id %s", n.id.c_str());
    FUZZ_CHECK((n.mac[0] & 1) == 0, "multicast MAC accepted");
    FUZZ_CHECK(n.test_inject_delay_ns <= 1'000'000'000, "inject delay");
    FUZZ_CHECK(n.test_hostile.size() <= 16, "%zu hostile kinds", n.test_hostile.size());
    using labyrinth::devices::lnic::BackendType;
    switch (n.backend.type) {
      case BackendType::pktgen: {
        const auto& g = n.backend.pktgen;
        FUZZ_CHECK(g.rate_pps >= 1 && g.rate_pps <= 20e6, "rate_pps %f", g.rate_pps);
        FUZZ_CHECK(g.frame_size >= sizeof(lnic_pktgen_header) && g.frame_size <= LNIC_FRAME_MAX,
                   "frame_size %u", g.frame_size);
        FUZZ_CHECK(g.burst >= 1 && g.burst <= 1024, "burst %u", g.burst);
        FUZZ_CHECK(g.duration_s >= 0 && g.duration_s <= 86400, "duration_s");
        FUZZ_CHECK(g.spin_us <= 100000, "spin_us %u", g.spin_us);
        break;
      }
      case BackendType::udp:
        FUZZ_CHECK(n.backend.udp.local_port != 0 && n.backend.udp.peer_port != 0, "udp ports");
        break;
      case BackendType::tap:
        FUZZ_CHECK(!n.backend.tap.ifname.empty() && n.backend.tap.ifname.size() <= 15, "tap name");
        break;
      default:
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ConfigLimits limits;  // fixed (not the host's RAM): the outcome depends on the input only
  limits.max_mem_mib = 4096;
  limits.check_kernel_file = false;  // the file system is not part of the input
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = labyrinth::vmm::parse_config(text, limits);
  if (cfg) {
    check_config(*cfg, limits);
  } else {
    check_error(cfg.error());
  }
  return 0;
}
