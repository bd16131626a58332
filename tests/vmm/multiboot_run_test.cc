// Multiboot kernels on real KVM: build/labyrinth boots a crafted one and kvm-unit-tests'
// own x86 kernels (built by the kvm_unit_tests_build fixture) as a subprocess.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/vmm/subprocess.h"
#include "tests/vmm/test_multiboot.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
using testing::Child;

class MultibootRun : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0) << "needs a working /dev/kvm";
    dir_ = fs::temp_directory_path() / ("labyrinth-mb-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string file(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  // labyrinth: the "labyrinth" section's keys, e.g. R"("pit": false)"; empty: none.
  std::string config(const std::string& kernel, const std::string& initrd, int vcpus,
                     const std::string& args = "", const std::string& labyrinth = "") {
    std::string boot = R"({"boot-source": {"kernel_image_path": ")" + kernel + "\"";
    if (!initrd.empty()) boot += R"(, "initrd_path": ")" + initrd + "\"";
    boot += R"(, "boot_args": ")" + args + "\"}";
    return file("vm" + std::to_string(n_++) + ".json",
                boot + R"(, "machine-config": {"vcpu_count": )" + std::to_string(vcpus) +
                    R"(, "mem_size_mib": 128}, "serial": {"output": "stdout"})" +
                    (labyrinth.empty() ? "" : R"(, "labyrinth": {)" + labyrinth + "}") + "}");
  }
  static Child::Result run(const std::string& cfg) {
    return Child::run({LABYRINTH_BINARY, "run", "--config", cfg}, std::chrono::seconds(120));
  }
  static std::string flat(const std::string& name) {
    return std::string(LABYRINTH_KUT_DIR) + "/x86/" + name;
  }
  fs::path dir_;
  int n_ = 0;
};

TEST_F(MultibootRun, CraftedKernelSeesTheLoaderMagicAndBootInformation) {
  const std::string kernel = (dir_ / "mb.elf").string();
  testing::TestMultiboot::with_code(testing::guests::kMbReport).write_to(kernel);
  // EAX = 0x2BADB002, then the information's flags through isa-debug-exit:
  // MEM|CMDLINE|MMAP|LOADER_NAME = 0x245 -> (0x245 << 1 | 1) & 0xFF = 0x8B.
  auto r = run(config(kernel, "", 1));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.out, "mb\n") << r.err;
  EXPECT_EQ(r.status, 0x8B) << r.err;
  // ... and with a module: | MODS (0x24D) -> 0x9B.
  auto m = run(config(kernel, file("env", "NR_CPUS=1\n"), 1));
  EXPECT_EQ(m.status, 0x9B) << m.err;
}

// kvm-unit-tests' smptest: the suite starts its APs itself (INIT/SIPI from page 0) and
// counts them through fw_cfg; exit(0) through isa-debug-exit is status 1.
TEST_F(MultibootRun, KvmUnitTestsSmptestPasses) {
  for (int cpus : {1, 2}) {
    auto r = run(config(flat("smptest.flat"), "", cpus));
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 1) << cpus << " vCPU(s)\n" << r.out << r.err;
    EXPECT_NE(r.out.find("SUMMARY:"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  }
}

// kvm-unit-tests' realmode: 16-bit code from a Multiboot kernel, relying on the state a
// PC BIOS leaves (vmm/boot/bios_handoff.h). Its "sti inhibit" ends in `sti; hlt` with the
// IRQ it raised masked, as under SeaBIOS: the PIT's tick through the PIC and the IVT's
// EOI stub wakes it. Without that hand-off the kernel hangs there (a timeout).
TEST_F(MultibootRun, KvmUnitTestsRealmodePasses) {
  auto r = run(config(flat("realmode.flat"), "", 1));
  EXPECT_FALSE(r.timed_out) << r.out;
  EXPECT_EQ(r.status, 1) << r.out << r.err;  // exit(0) through isa-debug-exit
  EXPECT_NE(r.out.find("PASS: sti inhibit"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cycles/emulated memory RMW instruction"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

// kvm-unit-tests' s3: the ACPI tables a Multiboot kernel gets (FACS, FADT's PM1a blocks),
// the RTC's update cycle and alarm, and S3 itself: PM1a_CNT's SLP_TYP 1 stops the vCPU
// before its next instruction (which would write 1 where the resume code reads), the
// alarm wakes the machine a second later and vCPU 0 resumes in real mode at the FACS
// waking vector, whose code exits with what it read: 0, status 1. Without S3 the kernel
// loops for good (a timeout); with two vCPUs the second waits for INIT/SIPI again.
TEST_F(MultibootRun, KvmUnitTestsS3SleepsAndTheRtcAlarmWakesItAtTheWakingVector) {
  for (int cpus : {1, 2}) {
    auto r = run(config(flat("s3.flat"), "", cpus));
    EXPECT_FALSE(r.timed_out) << cpus << " vCPU(s)\n" << r.out;
    EXPECT_EQ(r.status, 1) << cpus << " vCPU(s)\n" << r.out << r.err;
    EXPECT_NE(r.out.find("PM1a event registers at 600"), std::string::npos) << r.out;
  }
}

// vmexit.flat finds the pci-testdev (lib/pci.c's scan, the BAR size probe) and times an
// exit for each of its six tests (devices/pci/pci_testdev.h): "<test>:pci-mem <cycles>".
// Without the device the same kernel reports the two as skipped.
TEST_F(MultibootRun, KvmUnitTestsVmexitTimesThePciTestdevExits) {
  auto r = run(config(flat("vmexit.flat"), "", 1, "pci-mem pci-io", R"("pci_testdev": true)"));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1) << r.out << r.err;  // exit(0) through isa-debug-exit
  // Slot 12 is devfn 0x60; the BARs as the device places them.
  EXPECT_NE(r.out.find("pci-testdev at 0x60 membar d2000000 iobar c000"), std::string::npos)
      << r.out;
  for (const char* t : {"mmio-no-eventfd:pci-mem ", "mmio-wildcard-eventfd:pci-mem ",
                        "mmio-datamatch-eventfd:pci-mem ", "portio-no-eventfd:pci-io ",
                        "portio-wildcard-eventfd:pci-io ", "portio-datamatch-eventfd:pci-io "}) {
    EXPECT_NE(r.out.find(t), std::string::npos) << t << " missing:\n" << r.out;
  }
  EXPECT_EQ(r.out.find("skipped"), std::string::npos) << r.out;
  auto none = run(config(flat("vmexit.flat"), "", 1, "pci-mem pci-io"));
  EXPECT_EQ(none.status, 1) << none.out << none.err;
  EXPECT_NE(none.out.find("pci-mem (skipped)"), std::string::npos) << none.out;
}

// vmexit_ipi's -machine pit=off: labyrinth.pit false, two vCPUs, the IPI round trips timed.
TEST_F(MultibootRun, KvmUnitTestsVmexitIpiRunsWithoutAPit) {
  auto r = run(config(flat("vmexit.flat"), "", 2, "ipi", R"("pit": false)"));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("\nipi "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("skipped"), std::string::npos) << r.out;
}

// A CPU template (cpu-config, Firecracker's cpuid_modifiers) as the guest sees it: a crafted
// kernel prints CPUID's vendor and MAXPHYADDR and exits with its x2APIC, PCID and INVPCID
// bits (guests::cpuid_report_code). First as KVM gives them, then with a template file that
// takes the three away and sets another vendor and MAXPHYADDR: what kvm-unit-tests' xapic,
// pcid-disabled, msr and access-reduced-maxphyaddr ask of QEMU's -cpu.
TEST_F(MultibootRun, CpuTemplateChangesWhatTheGuestsCpuidSays) {
  const std::string kernel = (dir_ / "cpuid.elf").string();
  testing::TestMultiboot::with_code(testing::guests::cpuid_report_code()).write_to(kernel);
  auto host = run(config(kernel, "", 1));
  EXPECT_FALSE(host.timed_out);
  ASSERT_EQ(host.out.size(), 16u) << host.out << host.err;  // "VENDOR12CHAR\nNN\n"
  const std::string host_vendor = host.out.substr(0, 12);
  const int host_bits = std::stoi(host.out.substr(13, 2));
  // KVM emulates x2APIC with its in-kernel LAPIC on any host: the bit is there to clear.
  EXPECT_EQ((host.status >> 1) & 1, 1) << "x2APIC as KVM reports it; status " << host.status;

  const std::string vendor = host_vendor == "AuthenticAMD" ? "GenuineIntel" : "AuthenticAMD";
  const int bits = host_bits == 36 ? 39 : 36;
  const auto bitmap = [](uint32_t filter, uint32_t value) {
    std::string b = "0b";
    for (int i = 31; i >= 0; --i) {
      b += ((filter >> i) & 1) == 0 ? 'x' : ((value >> i) & 1) != 0 ? '1' : '0';
    }
    return b;
  };
  const auto word = [&](int i) {  // vendor characters 4i..4i+3, little-endian
    uint32_t w = 0;
    for (int k = 3; k >= 0; --k) w = (w << 8) | static_cast<uint8_t>(vendor[4 * i + k]);
    return w;
  };
  const auto reg = [&](const char* r, uint32_t filter, uint32_t value) {
    return R"({"register": ")" + std::string(r) + R"(", "bitmap": ")" + bitmap(filter, value) +
           "\"}";
  };
  const std::string tmpl =
      file("template.json",
           R"({"cpuid_modifiers": [{"leaf": "0x0", "subleaf": "0x0", "flags": 0, "modifiers": [)" +
               reg("ebx", ~0u, word(0)) + "," + reg("edx", ~0u, word(1)) + "," +
               reg("ecx", ~0u, word(2)) + R"(]},
        {"leaf": "0x1", "subleaf": "0x0", "flags": 0, "modifiers": [)" +
               reg("ecx", (1u << 21) | (1u << 17), 0) + R"(]},
        {"leaf": "0x7", "subleaf": "0x0", "flags": 1, "modifiers": [)" +
               reg("ebx", 1u << 10, 0) + R"(]},
        {"leaf": "0x80000008", "subleaf": "0x0", "flags": 0, "modifiers": [)" +
               reg("eax", 0xFF, static_cast<uint32_t>(bits)) + "]}]}");
  // Firecracker's --config-file form: "cpu-config" names the template file.
  std::string cfg = config(kernel, "", 1);
  std::ifstream in(cfg);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  text.pop_back();  // the closing brace
  auto masked = run(file("masked.json", text + R"(, "cpu-config": ")" + tmpl + "\"}"));
  EXPECT_FALSE(masked.timed_out);
  EXPECT_EQ(masked.out, vendor + "\n" + std::to_string(bits) + "\n") << masked.err;
  EXPECT_EQ(masked.status, 1) << "x2APIC, PCID and INVPCID all cleared:\n" << masked.err;

  // A leaf this KVM does not report: a configuration error naming the modifier (exit 2).
  auto bad = run(file("bad.json", text + R"(, "cpu-config": {"cpuid_modifiers": [{"leaf":
      "0x4fffffff", "subleaf": "0x0", "flags": 0, "modifiers": []}]}})"));
  EXPECT_EQ(bad.status, 2) << bad.out << bad.err;
  EXPECT_NE(bad.err.find("cpu-config.cpuid_modifiers[0]: leaf 0x4fffffff subleaf 0x0 is not "
                         "reported by this host's KVM"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(bad.out, "");
}

}  // namespace
}  // namespace labyrinth
