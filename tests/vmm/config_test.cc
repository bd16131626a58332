#include "vmm/config/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tests/vmm/test_elf.h"
#include "tests/vmm/test_multiboot.h"

namespace labyrinth::vmm {
namespace {

namespace fs = std::filesystem;

class Config : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("labyrinth-config-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    kernel_ = (dir_ / "guest.elf").string();
    testing::TestElf::with_code(testing::guests::kExit7).write_to(kernel_);
    std::ofstream(dir_ / "text.bin") << "not an ELF file at all";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A valid config with one field replaced (JSON fragment inserted by the caller).
  std::string with(const std::string& machine, const std::string& extra = "") const {
    return R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"("}, "machine-config": )" +
           machine + extra + "}";
  }
  std::expected<vmm::Config, ConfigError> parse(const std::string& text) const {
    ConfigLimits limits;  // 64 GiB, 32 vCPUs: independent of the host
    return parse_config(text, limits);
  }
  // Expects failure and returns the one-line message.
  std::string error_of(const std::string& text) const {
    auto r = parse(text);
    EXPECT_FALSE(r.has_value()) << text;
    if (r) return "";
    const std::string msg = r.error().message();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }

  fs::path dir_;
  std::string kernel_;
};

TEST_F(Config, ParsesFullConfig) {
  auto cfg = parse(with(R"({"vcpu_count": 2, "mem_size_mib": 256})",
                        R"(, "serial": {"output": "out.txt", "input": "none"},
                           "labyrinth": {"pool": {"chunk_size_kib": 4096, "initial_chunks": 2,
                             "max_chunks": 8, "backing": "thp", "min_pages": 1,
                             "low_pages": 2, "high_pages": 3}})"));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->kernel_image_path, kernel_);
  EXPECT_EQ(cfg->vcpu_count, 2u);
  EXPECT_EQ(cfg->mem_size_mib, 256u);
  EXPECT_EQ(cfg->serial.output, "out.txt");
  EXPECT_FALSE(cfg->serial.read_stdin);
  EXPECT_EQ(cfg->pool.chunk_size_kib, 4096u);
  EXPECT_EQ(cfg->pool.backing, alloc::Backing::thp);
  EXPECT_EQ(cfg->pool.high_pages, 3u);
}

// The pool's enumerations arrive parsed and the memory map computed: the machine takes
// both from the Config as they are.
TEST_F(Config, ParsesPoolEnumsAndComputesTheMemoryLayout) {
  auto cfg = parse(with(R"({"mem_size_mib": 256})",
                        R"(, "labyrinth": {"pool": {"chunk_size_kib": 4096, "max_chunks": 8,
                             "backing": "hugetlb", "zero_policy": "worker"}})"));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->pool.backing, alloc::Backing::hugetlb);
  EXPECT_EQ(cfg->pool.zero_policy, alloc::ZeroPolicy::worker);
  EXPECT_EQ(cfg->layout.ram_bytes, 256 * kMiB);
  ASSERT_EQ(cfg->layout.ram.size(), 1u);
  EXPECT_EQ(cfg->layout.ram[0].size, 256 * kMiB);
  EXPECT_EQ(cfg->layout.pool.gpa, 4 * kGiB);   // above the MMIO gap, 1 GiB aligned
  EXPECT_EQ(cfg->layout.pool.size, 1 * kGiB);  // 32 MiB of pool, rounded up to whole GiB

  auto defaults = parse(R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"("}})");
  ASSERT_TRUE(defaults.has_value()) << defaults.error().message();
  EXPECT_EQ(defaults->pool.backing, alloc::Backing::small_pages);
  EXPECT_EQ(defaults->pool.zero_policy, alloc::ZeroPolicy::on_free);
  EXPECT_EQ(defaults->layout.ram_bytes, 128 * kMiB);
  EXPECT_EQ(defaults->layout.pool.size, 1 * kGiB);
}

// Pre-flight reads the kernel once and hands the bytes it checked to the machine
// (Config::kernel_image): the file changing or going after loading changes nothing.
TEST_F(Config, KeepsTheKernelBytesPreflightChecked) {
  std::ifstream in(kernel_, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto cfg = parse(R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"("}})");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  fs::remove(kernel_);
  ASSERT_NE(cfg->kernel_image, nullptr);
  ASSERT_EQ(cfg->kernel_image->size(), file.size());
  EXPECT_EQ(std::memcmp(cfg->kernel_image->data(), file.data(), file.size()), 0);
  // Without pre-flight there are no bytes: the machine reads the file itself.
  ConfigLimits no_files;
  no_files.check_kernel_file = false;
  auto unchecked =
      parse_config(R"({"boot-source": {"kernel_image_path": "/nonexistent"}})", no_files);
  ASSERT_TRUE(unchecked.has_value()) << unchecked.error().message();
  EXPECT_EQ(unchecked->kernel_image, nullptr);
}

TEST_F(Config, DefaultsWhenOptionalSectionsAreMissing) {
  auto cfg = parse(R"({"boot-source": {"kernel_image_path": ")" + kernel_ + R"("}})");
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->vcpu_count, 1u);
  EXPECT_EQ(cfg->mem_size_mib, 128u);
  EXPECT_EQ(cfg->serial.output, "stdout");
  EXPECT_EQ(cfg->pool.max_chunks, 16u);
}

TEST_F(Config, RejectsUnknownKeys) {
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 1, "smt": false})")),
            "machine-config.smt: unknown key");
  EXPECT_EQ(error_of(with("{}", R"(, "drives": [])")), "drives: unknown key");
  EXPECT_EQ(error_of(with("{}", R"(, "labyrinth": {"pool": {"size": 1}})")),
            "labyrinth.pool.size: unknown key");
  EXPECT_EQ(error_of(with("{}", R"(, "serial": {"baud": 9600})")), "serial.baud: unknown key");
}

// Found by tests/fuzz/config_fuzz (corpus/config_fuzz/escapes.json): keys and values are
// echoed in the error, and a newline or an escape sequence in them made it several lines
// (or drove the terminal). They are escaped now.
TEST_F(Config, ErrorsEscapeControlCharactersInEchoedKeysAndValues) {
  EXPECT_EQ(error_of(with(R"({"vcpu\ncount": 1})")), "machine-config.vcpu\\ncount: unknown key");
  const std::string lnic =
      R"(, "labyrinth": {"lnics": [{"backend": {"type": "udp\u001b[31m\t\\"}}]})";
  EXPECT_EQ(error_of(with("{}", lnic)),
            "labyrinth.lnics[0].backend.type: must be \"loopback\", \"pktgen\", \"udp\" or "
            "\"tap\", got \"udp\\x1b[31m\\t\\\\\"");
}

// The lnic's test-only hostile mode (docs/lnic.md): kinds by name, in order; anything
// else names the entry.
TEST_F(Config, ParsesAnLnicsTestHostileListAndRejectsUnknownKinds) {
  auto lnic = [](const std::string& kinds) {
    return R"(, "labyrinth": {"lnics": [{"test_hostile": )" + kinds +
           R"(, "backend": {"type": "loopback"}}]})";
  };
  auto cfg = parse(with("{}", lnic(R"(["page_twice", "bad_address", "rx_prod_beyond_ring"])")));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  using devices::lnic::HostileKind;
  EXPECT_EQ(cfg->lnics.at(0).test_hostile,
            (std::vector<HostileKind>{HostileKind::page_twice, HostileKind::bad_address,
                                      HostileKind::rx_prod_beyond_ring}));
  const std::string must =
      "must be \"bad_address\", \"bad_length\", \"page_twice\" or "
      "\"rx_prod_beyond_ring\"";
  EXPECT_EQ(error_of(with("{}", lnic(R"(["bad_length", "twice"])"))),
            "labyrinth.lnics[0].test_hostile: entry 1 " + must);
  EXPECT_EQ(error_of(with("{}", lnic("[1]"))), "labyrinth.lnics[0].test_hostile: entry 0 " + must);
  EXPECT_EQ(error_of(with("{}", lnic(R"("page_twice")"))),
            "labyrinth.lnics[0].test_hostile: expected an array, got a string");
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += std::string(i ? ", " : "") + R"("bad_length")";
  EXPECT_EQ(error_of(with("{}", lnic(many + "]"))),
            "labyrinth.lnics[0].test_hostile: at most 16 entries");
}

TEST_F(Config, RejectsWrongTypes) {
  EXPECT_EQ(error_of(with(R"({"vcpu_count": "2"})")),
            "machine-config.vcpu_count: expected an integer, got a string");
  EXPECT_EQ(error_of(with(R"({"mem_size_mib": 1.5})")),
            "machine-config.mem_size_mib: expected an integer, got a number with a fraction");
  EXPECT_EQ(error_of(with("[]")), "machine-config: expected an object, got an array");
  EXPECT_EQ(error_of(R"({"boot-source": {"kernel_image_path": 5}})"),
            "boot-source.kernel_image_path: expected a string, got an integer");
  EXPECT_EQ(error_of(with("{}", R"(, "labyrinth": {"pool": {"backing": true}})")),
            "labyrinth.pool.backing: expected a string, got a boolean");
}

TEST_F(Config, RejectsMissingKernel) {
  EXPECT_EQ(error_of(R"({"machine-config": {"vcpu_count": 1}})"),
            "boot-source: missing (required)");
  EXPECT_EQ(error_of(R"({"boot-source": {}})"),
            "boot-source.kernel_image_path: missing (required)");
  const std::string msg =
      error_of(R"({"boot-source": {"kernel_image_path": "/nonexistent/guest.elf"}})");
  EXPECT_EQ(msg.rfind("boot-source.kernel_image_path: cannot open \"/nonexistent/guest.elf\"", 0),
            0u)
      << msg;
}

TEST_F(Config, RejectsNonElfKernel) {
  const std::string path = (dir_ / "text.bin").string();
  EXPECT_EQ(error_of(R"({"boot-source": {"kernel_image_path": ")" + path + R"("}})"),
            "boot-source.kernel_image_path: \"" + path +
                "\" is none of the kernels Labyrinth boots: not an ELF64 test guest, not a Linux "
                "bzImage (no \"HdrS\" at 0x202), not a Multiboot kernel (no magic 0x1badb002 in "
                "the first 8 KiB)");
}

// A Multiboot kernel is the third kind: checked against RAM, its module and command line.
TEST_F(Config, AcceptsAMultibootKernelAndChecksItAgainstTheMachine) {
  const std::string mb = (dir_ / "mb.flat").string();
  auto k = testing::TestMultiboot::with_code({0x90});
  k.write_to(mb);
  const std::string env = (dir_ / "env").string();
  std::ofstream(env) << "NR_CPUS=1\n";
  auto boot = [&](const std::string& kernel, const std::string& initrd, int mib) {
    return R"({"boot-source": {"kernel_image_path": ")" + kernel + R"(", "initrd_path": ")" +
           initrd + R"("}, "machine-config": {"mem_size_mib": )" + std::to_string(mib) + "}}";
  };
  auto cfg = parse(boot(mb, env, 128));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  EXPECT_EQ(cfg->initrd_path, env);
  // Its .bss ends past 4 MiB of RAM; a bad checksum; a module that is no file.
  k.ph[0].p_memsz = 8 << 20;
  k.write_to(mb);
  EXPECT_EQ(error_of(boot(mb, env, 4))
                .rfind("machine-config.mem_size_mib: the multiboot kernel "
                       "needs RAM up to 0xc00000",
                       0),
            0u);
  k = testing::TestMultiboot::with_code({0x90});
  k.checksum = 1;
  k.write_to(mb);
  EXPECT_EQ(error_of(boot(mb, env, 128))
                .rfind("boot-source.kernel_image_path: multiboot header checksum 0x1", 0),
            0u);
  testing::TestMultiboot::with_code({0x90}).write_to(mb);
  EXPECT_EQ(error_of(boot(mb, (dir_ / "none").string(), 128)).rfind("boot-source.initrd_path: ", 0),
            0u);
  // A test guest takes no initramfs.
  EXPECT_EQ(error_of(boot(kernel_, env, 128)),
            "boot-source.initrd_path: only a Linux or Multiboot kernel takes an initramfs");
}

TEST_F(Config, RejectsZeroAndAbsurdMemory) {
  EXPECT_EQ(error_of(with(R"({"mem_size_mib": 0})")),
            "machine-config.mem_size_mib: must be 4..65536, got 0");
  EXPECT_EQ(error_of(with(R"({"mem_size_mib": 1048576})")),
            "machine-config.mem_size_mib: must be 4..65536, got 1048576");
  EXPECT_EQ(error_of(with(R"({"mem_size_mib": -5})")),
            "machine-config.mem_size_mib: must be 4..65536, got -5");
  EXPECT_EQ(error_of(with(R"({"mem_size_mib": 129})")),
            "machine-config.mem_size_mib: must be a multiple of 2 (2 MiB pages), got 129");
  // Host RAM bounds the limit too.
  ConfigLimits host = ConfigLimits::host_limits();
  EXPECT_LE(host.max_mem_mib, 65536u);
  EXPECT_GT(host.max_mem_mib, 0u);
}

TEST_F(Config, RejectsBadVcpuCount) {
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 0})")),
            "machine-config.vcpu_count: must be 1..32, got 0");
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 64})")),
            "machine-config.vcpu_count: must be 1..32, got 64");
}

TEST_F(Config, RejectsBadPoolAndSerialSettings) {
  auto pool = [&](const std::string& body) {
    return error_of(with("{}", R"(, "labyrinth": {"pool": )" + body + "}"));
  };
  EXPECT_EQ(pool(R"({"backing": "1g"})"),
            "labyrinth.pool.backing: must be \"4k\", \"thp\" or \"hugetlb\", got \"1g\"");
  EXPECT_EQ(pool(R"({"chunk_size_kib": 6})"),
            "labyrinth.pool.chunk_size_kib: must be a multiple of 4 for backing \"4k\", got 6");
  EXPECT_EQ(pool(R"({"backing": "hugetlb", "chunk_size_kib": 1024})"),
            "labyrinth.pool.chunk_size_kib: must be a multiple of 2048 for backing \"hugetlb\", "
            "got 1024");
  EXPECT_EQ(pool(R"({"initial_chunks": 5, "max_chunks": 4})"),
            "labyrinth.pool.initial_chunks: must be at most max_chunks (4), got 5");
  EXPECT_EQ(pool(R"({"max_chunks": 0})"), "labyrinth.pool.max_chunks: must be 1..4096, got 0");
  EXPECT_EQ(pool(R"({"min_pages": 10, "low_pages": 5})").rfind("labyrinth.pool.low_pages:", 0), 0u);
  EXPECT_EQ(pool(R"({"zero_policy": "never"})"),
            "labyrinth.pool.zero_policy: must be \"worker\" or \"on_free\", got \"never\"");
  EXPECT_EQ(error_of(with("{}", R"(, "serial": {"input": "tty"})")),
            "serial.input: must be \"stdin\" or \"none\", got \"tty\"");
}

TEST_F(Config, RejectsInvalidJson) {
  const std::string msg = error_of("{\n  \"boot-source\": {,\n}");
  EXPECT_EQ(msg.rfind("invalid JSON at line 2", 0), 0u) << msg;
  EXPECT_EQ(error_of("[1, 2]"), "the top level must be a JSON object");
}

TEST_F(Config, LoadConfigNamesTheFile) {
  auto r = load_config((dir_ / "missing.json").string(), ConfigLimits{});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("missing.json"), std::string::npos);
  std::ofstream(dir_ / "bad.json") << "{";
  r = load_config((dir_ / "bad.json").string(), ConfigLimits{});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("bad.json: invalid JSON"), std::string::npos);
}

// labyrinth.pc_testdev: off by default, a boolean, never beside a NIC (pc_testdev_host.h).
TEST_F(Config, PcTestdevIsAnOptInBooleanAndRefusedBesideANic) {
  auto off = parse(with(R"({"vcpu_count": 1})"));
  ASSERT_TRUE(off.has_value()) << off.error().message();
  EXPECT_FALSE(off->pc_testdev);
  auto on = parse(with(R"({"vcpu_count": 1})", R"(, "labyrinth": {"pc_testdev": true})"));
  ASSERT_TRUE(on.has_value()) << on.error().message();
  EXPECT_TRUE(on->pc_testdev);
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 1})", R"(, "labyrinth": {"pc_testdev": 1})")),
            "labyrinth.pc_testdev: expected a boolean, got an integer");
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 1})",
                          R"(, "labyrinth": {"pc_testdev": true,
                               "lnics": [{"backend": {"type": "loopback"}}]})")),
            "labyrinth.pc_testdev: a test device for kvm-unit-tests: not on a VM with lnics or "
            "network-interfaces");
}

// labyrinth.pci_testdev (off by default) and labyrinth.pit (on by default): booleans that
// kvm-unit-tests' shim sets for -device pci-testdev and -machine pit=off.
TEST_F(Config, PciTestdevAndPitAreBooleansWithTheirDefaults) {
  auto def = parse(with(R"({"vcpu_count": 1})"));
  ASSERT_TRUE(def.has_value()) << def.error().message();
  EXPECT_FALSE(def->pci_testdev);
  EXPECT_TRUE(def->pit);
  auto set =
      parse(with(R"({"vcpu_count": 1})", R"(, "labyrinth": {"pci_testdev": true, "pit": false})"));
  ASSERT_TRUE(set.has_value()) << set.error().message();
  EXPECT_TRUE(set->pci_testdev);
  EXPECT_FALSE(set->pit);
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 1})", R"(, "labyrinth": {"pit": "off"})")),
            "labyrinth.pit: expected a boolean, got a string");
  EXPECT_EQ(error_of(with(R"({"vcpu_count": 1})", R"(, "labyrinth": {"pci_testdev": 1})")),
            "labyrinth.pci_testdev: expected a boolean, got an integer");
}

// "cpu-config": Firecracker's custom CPU template (cpuid_modifiers), inline as in its PUT
// /cpu-config and GET /vm/config. Numbers as 0x / 0b / decimal strings; bitmaps bit 31
// first, '_' ignored, '0'/'1' forced and 'x' kept.
TEST_F(Config, ParsesAFirecrackerCpuTemplate) {
  auto cfg = parse(with(R"({"vcpu_count": 1})", R"(, "cpu-config": {"cpuid_modifiers": [
      {"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [
        {"register": "ecx", "bitmap": "0bxxxxxxxxxx0xxx0xxxxxxxxxxxxxxxxx"},
        {"register": "edx", "bitmap": "0b1xxx_xxxx_xxxx_xxxx_xxxx_xxxx_xxxx_xxx0"}]},
      {"leaf": "7", "subleaf": "0b0", "flags": 1, "modifiers": [
        {"register": "ebx", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxx0xxxxxxxxxx"}]}],
      "msr_modifiers": []})"));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  const auto& m = cfg->cpu_template.cpuid_modifiers;
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].leaf, 1u);
  ASSERT_EQ(m[0].modifiers.size(), 2u);
  EXPECT_EQ(m[0].modifiers[0].reg, CpuidRegister::ecx);
  EXPECT_EQ(m[0].modifiers[0].bitmap.filter, (1u << 21) | (1u << 17));  // x2apic, pcid
  EXPECT_EQ(m[0].modifiers[0].bitmap.bits, 0u);
  EXPECT_EQ(m[0].modifiers[1].bitmap.filter, 0x80000001u);
  EXPECT_EQ(m[0].modifiers[1].bitmap.bits, 0x80000000u);
  EXPECT_EQ(m[1].leaf, 7u);
  EXPECT_EQ(m[1].subleaf, 0u);
  EXPECT_EQ(m[1].flags, 1u);
  EXPECT_EQ(m[1].modifiers[0].bitmap.filter, 1u << 10);  // invpcid
  EXPECT_TRUE(parse(with("{}"))->cpu_template.empty());
}

TEST_F(Config, RejectsAMalformedCpuTemplateNamingTheField) {
  const auto tmpl = [&](const std::string& leaf) {
    return with("{}", R"(, "cpu-config": {"cpuid_modifiers": [)" + leaf + "]}");
  };
  const auto reg = [&](const std::string& r, const std::string& bitmap) {
    return tmpl(R"({"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": ")" +
                r + R"(", "bitmap": ")" + bitmap + R"("}]})");
  };
  const std::string ok32 = "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  EXPECT_EQ(error_of(reg("ecx", "0b0101")),
            "cpu-config.cpuid_modifiers[0].modifiers[0].bitmap: must be \"0b\" and 32 "
            "characters 0, 1 or x (bit 31 first), got 4");
  EXPECT_EQ(error_of(reg("ecx", ok32 + "1")),
            "cpu-config.cpuid_modifiers[0].modifiers[0].bitmap: must be \"0b\" and 32 "
            "characters 0, 1 or x (bit 31 first), got more than 32");
  EXPECT_EQ(error_of(reg("ecx", "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx2")),
            "cpu-config.cpuid_modifiers[0].modifiers[0].bitmap: must be \"0b\" and 32 "
            "characters 0, 1 or x (bit 31 first), got a '2'");
  EXPECT_EQ(error_of(reg("ekx", ok32)),
            "cpu-config.cpuid_modifiers[0].modifiers[0].register: must be eax, ebx, ecx or "
            "edx, got \"ekx\"");
  EXPECT_EQ(error_of(reg("EAX", ok32)),
            "cpu-config.cpuid_modifiers[0].modifiers[0].register: must be eax, ebx, ecx or "
            "edx, got \"EAX\"");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [],
                              "mask": 1})")),
            "cpu-config.cpuid_modifiers[0].mask: unknown key");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": "0x1", "subleaf": "0x0", "modifiers": []})")),
            "cpu-config.cpuid_modifiers[0].flags: missing (required)");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": "0x1", "subleaf": "0x0", "flags": 8, "modifiers": []})")),
            "cpu-config.cpuid_modifiers[0].flags: must be 0..7, got 8");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": "0x1_0000_0000", "subleaf": "0", "flags": 0,
                              "modifiers": []})")),
            "cpu-config.cpuid_modifiers[0].leaf: must be a 32-bit number (0x hex, 0b binary or "
            "decimal)");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": "0x100000000", "subleaf": "0", "flags": 0,
                              "modifiers": []})")),
            "cpu-config.cpuid_modifiers[0].leaf: must be a 32-bit number (0x hex, 0b binary or "
            "decimal)");
  EXPECT_EQ(error_of(tmpl(R"({"leaf": 1, "subleaf": "0", "flags": 0, "modifiers": []})")),
            "cpu-config.cpuid_modifiers[0].leaf: expected a string, got an integer");
  EXPECT_EQ(error_of(tmpl("[]")),
            "cpu-config.cpuid_modifiers[0]: expected an object, got an array");
  // The parts of a template Labyrinth does not implement: refused unless empty.
  EXPECT_EQ(error_of(with("{}", R"(, "cpu-config": {"msr_modifiers": [{"addr": "0x10a",
                                    "bitmap": "0b1"}]})")),
            "cpu-config.msr_modifiers: not supported by Labyrinth (of a CPU template it applies "
            "cpuid_modifiers only)");
  EXPECT_EQ(error_of(with("{}", R"(, "cpu-config": {"kvm_capabilities": ["!121"]})")),
            "cpu-config.kvm_capabilities: not supported by Labyrinth (of a CPU template it "
            "applies cpuid_modifiers only)");
  EXPECT_EQ(error_of(with("{}", R"(, "cpu-config": {"cpuid": []})")),
            "cpu-config.cpuid: unknown key");
  EXPECT_EQ(error_of(with("{}", R"(, "cpu-config": 5)")),
            "cpu-config: expected a string (a template file) or an object, got an integer");
}

// Firecracker's --config-file names a template file: read at load, its errors naming it.
TEST_F(Config, ReadsACpuTemplateFile) {
  const std::string file = (dir_ / "tmpl.json").string();
  std::ofstream(file) << R"({"cpuid_modifiers": [{"leaf": "0x80000008", "subleaf": "0x0",
      "flags": 0, "modifiers": [{"register": "eax", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxx00100100"}]}]})";
  auto cfg = parse(with("{}", R"(, "cpu-config": ")" + file + "\""));
  ASSERT_TRUE(cfg.has_value()) << cfg.error().message();
  ASSERT_EQ(cfg->cpu_template.cpuid_modifiers.size(), 1u);
  EXPECT_EQ(cfg->cpu_template.cpuid_modifiers[0].leaf, 0x80000008u);
  EXPECT_EQ(cfg->cpu_template.cpuid_modifiers[0].modifiers[0].bitmap.bits, 36u);
  std::ofstream(file) << R"({"cpuid_modifiers": [{"leaf": "1", "subleaf": "0", "flags": 0,
      "modifiers": [{"register": "ecx", "bitmap": "0b1"}]}]})";
  EXPECT_EQ(error_of(with("{}", R"(, "cpu-config": ")" + file + "\"")),
            "cpu-config.cpuid_modifiers[0].modifiers[0].bitmap: must be \"0b\" and 32 "
            "characters 0, 1 or x (bit 31 first), got 1 (in " +
                file + ")");
  EXPECT_NE(error_of(with("{}", R"(, "cpu-config": ")" + (dir_ / "none.json").string() + "\""))
                .find("cpu-config: cannot read"),
            std::string::npos);
}

}  // namespace
}  // namespace labyrinth::vmm
