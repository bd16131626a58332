// Integration tests on real KVM: build/labyrinth runs the test guests as a subprocess.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "tests/vmm/subprocess.h"
#include "tests/vmm/test_elf.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using namespace std::chrono_literals;

class LabyrinthRun : public ::testing::Test {
 protected:
  void SetUp() override {
    // Label kvm: scripts/test.sh runs these where /dev/kvm works (in the test VM if need be).
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0) << "needs a working /dev/kvm";
    dir_ = fs::temp_directory_path() / ("labyrinth-run-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static std::string guest(const std::string& name) {
    return std::string(LABYRINTH_GUEST_DIR) + "/" + name + ".elf";
  }
  std::string hand_guest(const std::string& name, const std::vector<uint8_t>& code) {
    const std::string path = (dir_ / (name + ".elf")).string();
    testing::TestElf::with_code(code).write_to(path);
    return path;
  }
  // Writes a config (absolute paths) and returns its path.
  std::string config(const std::string& kernel, int vcpus = 1, const std::string& extra = "",
                     const std::string& args = "") {
    const std::string path = (dir_ / ("vm" + std::to_string(n_++) + ".json")).string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << kernel
                        << R"(", "boot_args": ")" << args
                        << R"("}, "machine-config": {"vcpu_count": )" << vcpus
                        << R"(, "mem_size_mib": 128}, "serial": {"output": "stdout"})" << extra
                        << "}";
    return path;
  }
  std::string raw_config(const std::string& text) {
    const std::string path = (dir_ / ("raw" + std::to_string(n_++) + ".json")).string();
    std::ofstream(path) << text;
    return path;
  }
  static Child::Result run(const std::string& cfg, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {LABYRINTH_BINARY, "run", "--config", cfg};
    args.insert(args.end(), extra.begin(), extra.end());
    return Child::run(args);
  }

  fs::path dir_;
  int n_ = 0;
};

TEST_F(LabyrinthRun, HelloPrintsAndExitsZero) {
  auto r = run(config(guest("hello"), 1, "", "from-test"));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Hello from Labyrinth guest"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 cpu(s), 128 MiB RAM"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cmdline \"from-test\""), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "") << "default log level prints nothing on success";
}

TEST_F(LabyrinthRun, HelloWithHaltedApsStops) {
  // CPUs 1..3 halt forever with interrupts off; the exit must still stop them.
  auto r = run(config(guest("hello"), 4));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("4 cpu(s)"), std::string::npos) << r.out;
  // A hang would hit run()'s timeout; how fast the exit is is vmm_boot_bench's business
  // (no timing assertions in tests: this machine is shared and the test VM emulates).
}

TEST_F(LabyrinthRun, SmpEveryCpuReports) {
  auto r = run(config(guest("smp"), 2));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("cpu 0 online (apic id 0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu 1 online (apic id 1)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("all 2 cpus online"), std::string::npos) << r.out;
}

TEST_F(LabyrinthRun, FaultReportsAndExitsThree) {
  auto r = run(config(guest("fault")));
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("unhandled exception"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vector 14"), std::string::npos) << r.out;
}

TEST_F(LabyrinthRun, IrqCountsEveryInterrupt) {
  auto r = run(config(guest("irq")));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("received 10/10 interrupts"), std::string::npos) << r.out;
}

TEST_F(LabyrinthRun, ExitPortStatusPassesThrough) {
  auto r = run(config(hand_guest("exit7", testing::guests::kExit7)));
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "hi\n");
}

TEST_F(LabyrinthRun, SerialOutToFile) {
  const std::string out = (dir_ / "serial.txt").string();
  auto r = run(config(hand_guest("exit7", testing::guests::kExit7)), {"--serial-out", out});
  EXPECT_EQ(r.status, 7) << r.err;
  EXPECT_EQ(r.out, "");
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hi");
}

TEST_F(LabyrinthRun, TripleFaultIsReportedOnceWithStatusThree) {
  auto r = run(config(hand_guest("triple", testing::guests::kTripleFault)));
  EXPECT_EQ(r.status, 3) << r.err;
  EXPECT_NE(r.err.find("KVM_EXIT_SHUTDOWN"), std::string::npos) << r.err;
  if (::access("/sys/module/kvm_amd", F_OK) == 0) {
    // AMD SVM: KVM resets the vCPU at a shutdown; the report must say the state is
    // gone rather than show the reset vector as the crash site.
    EXPECT_NE(r.err.find("registers lost: KVM reset the vCPU"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("rip=0xfff0"), std::string::npos) << r.err;
  } else {  // Intel VMX and PVM keep the state: the faulting instruction and page tables
    EXPECT_NE(r.err.find("rip=0x100078"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("cr3=0x10000"), std::string::npos) << r.err;
  }
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(LabyrinthRun, UnmappedPortReadsAllOnes) {
  auto r = run(config(hand_guest("unmapped", testing::guests::kUnmappedRead)));
  EXPECT_EQ(r.status, 255) << r.err;  // the guest exits with the byte it read
  EXPECT_NE(r.err.find("unmapped read"), std::string::npos) << r.err;
}

TEST_F(LabyrinthRun, PoolWindowIsMappedIntoTheGuest) {
  auto mapped = run(config(hand_guest("pool", testing::guests::kReadPoolWindow)));
  EXPECT_EQ(mapped.status, 0) << "first pool chunk at the window base reads as zero: "
                              << mapped.err;
  auto beyond = run(config(hand_guest("pool_end", testing::guests::kReadPoolWindowEnd)));
  EXPECT_EQ(beyond.status, 255) << "no chunk at the end of the window: MMIO, all-ones";
  EXPECT_NE(beyond.err.find("mmio bus: unmapped read"), std::string::npos) << beyond.err;
}

// On-CPU time in nanoseconds (the first field of /proc/PID/task/TID/schedstat) of each
// thread named vcpuN. Not guest_time (field 43 of .../stat): a host whose KVM emulates
// the guest's kernel mode inside the host kernel (the nested PVM KVM) charges all of a
// spinning CPL-0 guest to system time, and guest_time stays 0 there.
std::map<std::string, uint64_t> vcpu_cpu_ns(pid_t pid) {
  std::map<std::string, uint64_t> out;
  std::error_code ec;
  for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (!comm.starts_with("vcpu")) continue;
    uint64_t ns = 0;
    if (std::ifstream(task.path() / "schedstat") >> ns) out[comm] = ns;
  }
  return out;
}

// Polls ready() every 2 ms until it holds or `end` passes; returns its last answer.
template <class F>
bool eventually(F ready, std::chrono::steady_clock::time_point end) {
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

// c runs kSpinSayCpu on `vcpus` vCPUs with --log-level info. The signal goes out once
// every vCPU sits in its last KVM_RUN: it printed its digit (the guest's only exit) and
// then spent kSpinProof more on a CPU. Handling that one exit and re-entering KVM_RUN
// takes microseconds, and the guest makes no other exit, so that much CPU time after
// the digit is time in the guest, on every host kind. From there only a kick gets a
// vCPU out, and a missed one hangs the VM until the guard below.
constexpr uint64_t kSpinProofNs = 100'000'000;
void expect_clean_signal_exit(Child& c, int vcpus, int sig, int expected_status) {
  // Both guards together stay inside the test's ctest TIMEOUT (120 s).
  const auto ready_by = std::chrono::steady_clock::now() + 50s;
  const bool printed = eventually(
      [&] {
        const std::string out = c.out();
        for (int i = 0; i < vcpus; ++i) {
          if (out.find(static_cast<char>('0' + i)) == std::string::npos) return false;
        }
        return true;
      },
      ready_by);
  EXPECT_TRUE(printed) << "not every vCPU printed its index: " << c.out() << c.err();
  const std::map<std::string, uint64_t> before =
      printed ? vcpu_cpu_ns(c.pid()) : std::map<std::string, uint64_t>{};
  EXPECT_EQ(before.size(), static_cast<size_t>(vcpus)) << "vCPU threads";
  const bool spinning = printed && before.size() == static_cast<size_t>(vcpus) &&
                        eventually(
                            [&] {
                              std::map<std::string, uint64_t> now = vcpu_cpu_ns(c.pid());
                              return std::ranges::all_of(before, [&](const auto& b) {
                                return now[b.first] >= b.second + kSpinProofNs;
                              });
                            },
                            ready_by);
  EXPECT_TRUE(spinning) << "a vCPU never spent 100 ms on a CPU after its output";
  ::kill(c.pid(), spinning ? sig : SIGKILL);
  // (Shutdown time itself is measured by vmm_boot_bench, not asserted here.)
  auto r = c.wait(60s);
  if (!spinning) return;
  EXPECT_FALSE(r.timed_out) << "the VM did not stop after the signal";
  EXPECT_EQ(r.status, expected_status) << r.err;
  // Logged once every vCPU thread is joined: a clean stop, not a death by the signal
  // (which Child reports as the same 128 + its number).
  EXPECT_NE(r.err.find("VM stopped: signal (status " + std::to_string(expected_status) + ")"),
            std::string::npos)
      << r.err;
}

TEST_F(LabyrinthRun, SigintStopsASpinningGuestWith130) {
  Child c = Child::spawn({LABYRINTH_BINARY, "run", "--config",
                          config(hand_guest("spin", testing::guests::kSpinSayCpu)), "--log-level",
                          "info"});
  expect_clean_signal_exit(c, 1, SIGINT, 130);
}

TEST_F(LabyrinthRun, SigtermStopsEveryVcpuWith143) {
  Child c = Child::spawn({LABYRINTH_BINARY, "run", "--config",
                          config(hand_guest("spin", testing::guests::kSpinSayCpu), 3),
                          "--log-level", "info"});
  expect_clean_signal_exit(c, 3, SIGTERM, 143);
}

struct BadConfig {
  const char* name;
  std::string json;      // %K is replaced by the kernel path
  std::string expected;  // the message after "labyrinth: config error: "
};

TEST_F(LabyrinthRun, BadConfigsExitTwoNamingTheField) {
  const std::string k = hand_guest("exit7", testing::guests::kExit7);
  const std::string text = (dir_ / "text.txt").string();
  std::ofstream(text) << "plain text";
  const std::string boot = R"("boot-source": {"kernel_image_path": ")" + k + R"("})";
  const std::vector<BadConfig> cases = {
      {"unknown key", "{" + boot + R"(, "machine-config": {"vcpus": 1}})",
       "machine-config.vcpus: unknown key"},
      {"wrong type", "{" + boot + R"(, "machine-config": {"vcpu_count": "1"}})",
       "machine-config.vcpu_count: expected an integer, got a string"},
      {"missing kernel", R"({"boot-source": {"kernel_image_path": "/nonexistent.elf"}})",
       "boot-source.kernel_image_path: cannot open \"/nonexistent.elf\": No such file or "
       "directory"},
      {"non-ELF kernel", R"({"boot-source": {"kernel_image_path": ")" + text + R"("}})",
       "boot-source.kernel_image_path: \"" + text + "\" is none of the kernels Labyrinth boots"},
      {"zero memory", "{" + boot + R"(, "machine-config": {"mem_size_mib": 0}})",
       "machine-config.mem_size_mib: must be 4.."},
      {"absurd memory", "{" + boot + R"(, "machine-config": {"mem_size_mib": 10000000}})",
       "machine-config.mem_size_mib: must be 4.."},
      {"too many vCPUs", "{" + boot + R"(, "machine-config": {"vcpu_count": 64}})",
       "machine-config.vcpu_count: must be 1..32, got 64"},
      {"zero vCPUs", "{" + boot + R"(, "machine-config": {"vcpu_count": 0}})",
       "machine-config.vcpu_count: must be 1..32, got 0"},
      {"bad pool", "{" + boot + R"(, "labyrinth": {"pool": {"backing": "1g"}}})",
       "labyrinth.pool.backing: must be"},
      {"bad JSON", "{" + boot, "invalid JSON"},
  };
  for (const auto& c : cases) {
    auto r = run(raw_config(c.json));
    EXPECT_EQ(r.status, 2) << c.name << ": " << r.err;
    EXPECT_EQ(r.err.rfind("labyrinth: config error: ", 0), 0u) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.name;
  }
}

TEST_F(LabyrinthRun, MalformedElfBehindTheMagicIsAConfigError) {
  testing::TestElf e = testing::TestElf::with_code(testing::guests::kExit7);
  e.eh.e_machine = 3;  // EM_386
  const std::string path = (dir_ / "i386.elf").string();
  e.write_to(path);
  auto r = run(config(path));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("unsupported ELF image"), std::string::npos) << r.err;
}

TEST_F(LabyrinthRun, CommandLineUsage) {
  auto help = Child::run({LABYRINTH_BINARY, "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("Exit status"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("130/143"), std::string::npos) << help.out;
  auto run_help = Child::run({LABYRINTH_BINARY, "run", "--help"});
  EXPECT_EQ(run_help.status, 0);
  EXPECT_NE(run_help.out.find("--serial-out"), std::string::npos) << run_help.out;
  EXPECT_NE(run_help.out.find("--log-level"), std::string::npos) << run_help.out;
  EXPECT_EQ(Child::run({LABYRINTH_BINARY}).status, 2);
  EXPECT_EQ(Child::run({LABYRINTH_BINARY, "run"}).status, 2);
  EXPECT_EQ(Child::run({LABYRINTH_BINARY, "run", "--config", "/nonexistent.json"}).status, 2);
  EXPECT_EQ(Child::run({LABYRINTH_BINARY, "run", "--config", "x", "--log-level", "loud"}).status,
            2);
}

TEST_F(LabyrinthRun, DebugLoggingShowsSetup) {
  auto r = run(config(hand_guest("exit7", testing::guests::kExit7)), {"--log-level", "debug"});
  EXPECT_EQ(r.status, 7);
  EXPECT_NE(r.err.find("memslot"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("VM stopped"), std::string::npos) << r.err;
}

// --trace-start: every step before the guest's first instruction on stderr, in order,
// once the VM stopped (issue 19).
TEST_F(LabyrinthRun, TraceStartPrintsEveryStepBeforeTheFirstRun) {
  auto r = run(config(hand_guest("exit7", testing::guests::kExit7)), {"--trace-start"});
  EXPECT_EQ(r.status, 7) << r.err;
  size_t at = 0;
  for (const char* step :
       {"command line", "logger + mlockall", "config file read + checked", "KVM: VM, irqchip, PIT",
        "guest RAM: mmap + memslots", "page pool + its worker", "kernel, initrd, boot tables",
        "devices", "vCPUs: CPUID, registers", "vCPU runners", "first KVM_RUN (vCPU thread)",
        "exec -> main", "exec -> first KVM_RUN"}) {
    const size_t pos = r.err.find(step, at);
    ASSERT_NE(pos, std::string::npos) << "no '" << step << "' after offset " << at << ":\n"
                                      << r.err;
    at = pos;
  }
  // The pre-flight check read the kernel image and the build loaded those bytes: no
  // second read of the file (issue 19; the step shows only when the machine reads it).
  EXPECT_EQ(r.err.find("kernel image read"), std::string::npos) << r.err;
  // Without the flag: nothing (the default run prints nothing on success).
  auto quiet = run(config(hand_guest("exit7b", testing::guests::kExit7)));
  EXPECT_EQ(quiet.status, 7);
  EXPECT_EQ(quiet.err, "");
}

// A VM without an lnic neither calibrates the TSC clock nor measures the guest TSC offset
// at start (32 KVM_GET_MSRS and a 50 ms spin a microVM does not do): the lnic is its only
// user (issue 19). With one, it is measured.
TEST_F(LabyrinthRun, GuestTscOffsetIsMeasuredOnlyForAnLnic) {
  auto plain = run(config(hand_guest("exit7", testing::guests::kExit7)), {"--log-level", "debug"});
  EXPECT_EQ(plain.status, 7) << plain.err;
  EXPECT_NE(plain.err.find("guest TSC offset not measured: no lnic uses it"), std::string::npos)
      << plain.err;
  EXPECT_EQ(plain.err.find("guest TSC offset -"), std::string::npos) << plain.err;
  EXPECT_EQ(plain.err.find("measured pair"), std::string::npos) << plain.err;
  auto lnic =
      run(config(hand_guest("exit7b", testing::guests::kExit7), 1,
                 R"(, "labyrinth": {"lnics": [{"id": "lnic0", "backend": {"type": "loopback"}}]})"),
          {"--log-level", "debug"});
  EXPECT_EQ(lnic.status, 7) << lnic.err;
  EXPECT_EQ(lnic.err.find("not measured"), std::string::npos) << lnic.err;
  EXPECT_NE(lnic.err.find("guest TSC offset "), std::string::npos) << lnic.err;
  EXPECT_NE(lnic.err.find(" ticks)"), std::string::npos) << lnic.err;
}

}  // namespace
}  // namespace labyrinth
