// Multiboot kernels on real KVM: build/labyrinth boots a crafted one and kvm-unit-tests'
// own x86 kernels (built by the kvm_unit_tests_build fixture) as a subprocess.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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

}  // namespace
}  // namespace labyrinth
