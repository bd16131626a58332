// The "cpu-config" section: Firecracker's custom CPU template (its API definition's
// CpuConfig, ../shared/peers/firecracker-api-*.yaml), of which Labyrinth implements
// cpuid_modifiers. As in Firecracker's --config-file the value may be the path of a
// template file; as in its PUT /cpu-config and GET /vm/config it may be the template
// itself. What the template does to the CPUID table: vmm/boot/cpuid.h.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/config/json_reader.h"
#include "vmm/config/parsers.h"

namespace labyrinth::vmm {

namespace json = boost::json;
using json_reader::Section;

namespace {

// At most as many leaf modifiers as KVM takes CPUID entries (KVM_MAX_CPUID_ENTRIES), and a
// few register modifiers a leaf (Firecracker allows a register twice; they apply in order).
constexpr size_t kMaxLeafModifiers = 256;
constexpr size_t kMaxRegisterModifiers = 16;

// Firecracker's number strings: "0x" hex, "0b" binary, or decimal; it must fit 32 bits.
std::optional<uint32_t> parse_u32(std::string_view text) {
  unsigned base = 10;
  if (text.starts_with("0x") || text.starts_with("0X")) {
    base = 16;
    text.remove_prefix(2);
  } else if (text.starts_with("0b") || text.starts_with("0B")) {
    base = 2;
    text.remove_prefix(2);
  }
  if (text.empty()) return std::nullopt;
  uint64_t n = 0;
  for (const char c : text) {
    unsigned d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a') + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A') + 10;
    } else {
      return std::nullopt;
    }
    if (d >= base) return std::nullopt;
    n = n * base + d;
    if (n > UINT32_MAX) return std::nullopt;
  }
  return static_cast<uint32_t>(n);
}

// Firecracker's bitmap: "0b" (optional there, as here) then one character a bit, bit 31
// first: '0' or '1' forces the bit, 'x' keeps it; '_' separates and counts for nothing.
// Exactly 32 bits: a shorter string would leave the reader guessing which end is missing.
std::optional<std::string> parse_bitmap(std::string_view text, CpuidBitmap& out) {
  std::string_view bits = text;
  if (bits.starts_with("0b")) bits.remove_prefix(2);
  CpuidBitmap b;
  unsigned n = 0;
  for (const char c : bits) {
    if (c == '_') continue;
    if (c != '0' && c != '1' && c != 'x') {
      return "must be \"0b\" and 32 characters 0, 1 or x (bit 31 first), got a '" +
             std::string(1, c) + "'";
    }
    if (++n > 32) break;
    b.filter <<= 1;
    b.bits <<= 1;
    if (c != 'x') b.filter |= 1;
    if (c == '1') b.bits |= 1;
  }
  if (n != 32) {
    return "must be \"0b\" and 32 characters 0, 1 or x (bit 31 first), got " +
           (n > 32 ? std::string("more than 32") : std::to_string(n));
  }
  out = b;
  return std::nullopt;
}

std::optional<CpuidRegister> register_of(std::string_view name) {
  if (name == "eax") return CpuidRegister::eax;
  if (name == "ebx") return CpuidRegister::ebx;
  if (name == "ecx") return CpuidRegister::ecx;
  if (name == "edx") return CpuidRegister::edx;
  return std::nullopt;
}

void parse_register_modifier(Section& s, CpuidLeafModifier& leaf) {
  s.allow_only({"register", "bitmap"});
  std::string name, bitmap;
  s.string("register", true, name);
  s.string("bitmap", true, bitmap);
  if (!s.ok()) return;
  CpuidRegisterModifier m;
  const auto reg = register_of(name);
  if (!reg) return s.fail("register", "must be eax, ebx, ecx or edx, got \"" + name + "\"");
  m.reg = *reg;
  if (auto problem = parse_bitmap(bitmap, m.bitmap)) return s.fail("bitmap", *problem);
  leaf.modifiers.push_back(m);
}

void parse_leaf_modifier(Section& s, CpuTemplate& out, std::optional<ConfigError>& err,
                         const std::string& path) {
  s.allow_only({"leaf", "subleaf", "flags", "modifiers"});
  CpuidLeafModifier leaf;
  std::string leaf_text, subleaf_text;
  s.string("leaf", true, leaf_text);
  s.string("subleaf", true, subleaf_text);
  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1), and the two legacy stateful bits (2, 4): the
  // only flags a KVM entry carries.
  s.integer("flags", true, 0, 7, leaf.flags);
  const json::array* mods = s.array("modifiers", true);
  if (!s.ok()) return;
  const auto l = parse_u32(leaf_text);
  if (!l) return s.fail("leaf", "must be a 32-bit number (0x hex, 0b binary or decimal)");
  const auto sl = parse_u32(subleaf_text);
  if (!sl) return s.fail("subleaf", "must be a 32-bit number (0x hex, 0b binary or decimal)");
  leaf.leaf = *l;
  leaf.subleaf = *sl;
  json_reader::parse_list(*mods, path + ".modifiers", kMaxRegisterModifiers, "entries", err,
                          [&](Section& r, size_t) { parse_register_modifier(r, leaf); });
  if (!err) out.cpuid_modifiers.push_back(std::move(leaf));
}

}  // namespace

void parse_cpu_template(const json::object& obj, const std::string& path, CpuTemplate& out,
                        std::optional<ConfigError>& err) {
  Section s(obj, path, err);
  s.allow_only(
      {"cpuid_modifiers", "msr_modifiers", "kvm_capabilities", "reg_modifiers", "vcpu_features"});
  // The template's other parts: refused unless empty, never ignored (a template that asks
  // for an MSR value the guest would not get is not the template the user wrote).
  for (std::string_view key :
       {"msr_modifiers", "kvm_capabilities", "reg_modifiers", "vcpu_features"}) {
    if (const json::array* a = s.array(key, false); a != nullptr && !a->empty()) {
      s.fail(key, "not supported by Labyrinth (of a CPU template it applies cpuid_modifiers only)");
    }
  }
  CpuTemplate t;
  if (const json::array* a = s.array("cpuid_modifiers", false)) {
    const std::string item = path + ".cpuid_modifiers";
    json_reader::parse_list(
        *a, item, kMaxLeafModifiers, "entries", err, [&](Section& leaf, size_t i) {
          parse_leaf_modifier(leaf, t, err, item + "[" + std::to_string(i) + "]");
        });
  }
  if (!err) out = std::move(t);
}

void parse_cpu_config(const json::value& v, Config& cfg, std::optional<ConfigError>& err) {
  if (err) return;
  if (v.is_string()) {  // Firecracker's --config-file: the template file's path
    cfg.cpu_config_path = std::string(v.get_string());
    if (cfg.cpu_config_path.empty()) {
      err = ConfigError{"cpu-config", "must be a template file's path or a template object"};
    }
    return;
  }
  if (!v.is_object()) {
    err = ConfigError{"cpu-config", "expected a string (a template file) or an object, got " +
                                        std::string(json_reader::kind_name(v.kind()))};
    return;
  }
  parse_cpu_template(v.get_object(), "cpu-config", cfg.cpu_template, err);
}

}  // namespace labyrinth::vmm
