// The machine's sections: boot-source, machine-config, serial and labyrinth.pool.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "vmm/boot/boot_setup.h"
#include "vmm/config/json_reader.h"
#include "vmm/config/parsers.h"

namespace labyrinth::vmm {

namespace json = boost::json;
using json_reader::Section;

namespace {

// The file's spelling of each pool enumeration; the parsed Config holds only the enum.
template <typename E>
using Names = std::pair<std::string_view, E>;
constexpr Names<alloc::Backing> kBackings[] = {
    {"4k", alloc::Backing::small_pages},
    {"thp", alloc::Backing::thp},
    {"hugetlb", alloc::Backing::hugetlb},
};
constexpr Names<alloc::ZeroPolicy> kZeroPolicies[] = {
    {"worker", alloc::ZeroPolicy::worker},
    {"on_free", alloc::ZeroPolicy::on_free},
};

template <typename E, size_t N>
std::optional<E> value_of(const Names<E> (&names)[N], std::string_view name) {
  for (const auto& [n, v] : names) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// The name of a default, so that an absent key reads as if the default were written.
template <typename E, size_t N>
std::string name_of(const Names<E> (&names)[N], E value) {
  for (const auto& [n, v] : names) {
    if (v == value) return std::string(n);
  }
  return {};
}

void parse_pool(const json::object& obj, PoolSettings& p, std::optional<ConfigError>& err) {
  Section s(obj, "labyrinth.pool", err);
  s.allow_only({"chunk_size_kib", "initial_chunks", "max_chunks", "backing", "min_pages",
                "low_pages", "high_pages", "zero_policy"});
  std::string backing = name_of(kBackings, p.backing);
  std::string zero_policy = name_of(kZeroPolicies, p.zero_policy);
  s.integer("chunk_size_kib", false, 4, 1 << 20, p.chunk_size_kib);
  s.integer("max_chunks", false, 1, 4096, p.max_chunks);
  s.integer("initial_chunks", false, 0, 4096, p.initial_chunks);
  s.string("backing", false, backing);
  s.integer("min_pages", false, 0, UINT32_MAX, p.min_pages);
  s.integer("low_pages", false, 0, UINT32_MAX, p.low_pages);
  s.integer("high_pages", false, 0, UINT32_MAX, p.high_pages);
  s.string("zero_policy", false, zero_policy);
  if (!s.ok()) return;
  const auto zp = value_of(kZeroPolicies, zero_policy);
  if (!zp) {
    return s.fail("zero_policy", "must be \"worker\" or \"on_free\", got \"" + zero_policy + "\"");
  }
  p.zero_policy = *zp;
  const auto b = value_of(kBackings, backing);
  if (!b) {
    return s.fail("backing", "must be \"4k\", \"thp\" or \"hugetlb\", got \"" + backing + "\"");
  }
  p.backing = *b;
  // Huge-page backings pin and map a chunk as whole 2 MiB pages.
  const uint32_t align = p.backing == alloc::Backing::small_pages ? 4 : 2048;
  if (p.chunk_size_kib % align != 0) {
    return s.fail("chunk_size_kib", "must be a multiple of " + std::to_string(align) +
                                        " for backing \"" + backing + "\", got " +
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

}  // namespace

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
  // RAM is mapped in 2 MiB pages (the memory layout requires it).
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

void parse_labyrinth(const json::object& obj, Config& cfg, std::optional<ConfigError>& err) {
  Section s(obj, "labyrinth", err);
  s.allow_only({"pool", "lnics", "pc_testdev", "pci_testdev", "pit"});
  if (const json::object* pool = s.object("pool", false)) parse_pool(*pool, cfg.pool, err);
  if (const json::array* lnics = s.array("lnics", false)) parse_lnics(*lnics, cfg.lnics, err);
  s.boolean("pc_testdev", false, cfg.pc_testdev);
  s.boolean("pci_testdev", false, cfg.pci_testdev);
  s.boolean("pit", false, cfg.pit);
  // Its flush port unmaps a guest page for an instant (vmm/pc_testdev_host.h): no NIC may
  // be copying into guest RAM beside it. network-interfaces was parsed before this section.
  if (s.ok() && cfg.pc_testdev && (!cfg.lnics.empty() || !cfg.network_interfaces.empty())) {
    s.fail("pc_testdev",
           "a test device for kvm-unit-tests: not on a VM with lnics or network-interfaces");
  }
}

}  // namespace labyrinth::vmm
