// Integration tests of the per-thread seccomp filters (vmm/sandbox/seccomp.h): the real
// build/labyrinth with a guest, observed from outside through /proc.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/vmm/subprocess.h"
#include "tests/vmm/test_elf.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using namespace std::chrono_literals;

class Seccomp : public ::testing::Test {
 protected:
  void SetUp() override {
    // Label kvm: scripts/test.sh runs these where /dev/kvm works (in the test VM if need be).
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0) << "needs a working /dev/kvm";
    dir_ = fs::temp_directory_path() / ("labyrinth-seccomp-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    ::unsetenv("LABYRINTH_TEST_SECCOMP_VIOLATION");
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // A guest that prints "spin\n" and spins; vcpus vCPUs; an lnic (loopback) so the
  // event loop serves a device too.
  std::string spin_config(int vcpus) {
    const std::string elf = (dir_ / "spin.elf").string();
    testing::TestElf::with_code(testing::guests::kSpin).write_to(elf);
    const std::string path = (dir_ / ("spin" + std::to_string(vcpus) + ".json")).string();
    std::ofstream(path)
        << R"({"boot-source": {"kernel_image_path": ")" << elf
        << R"("}, "machine-config": {"vcpu_count": )" << vcpus
        << R"(, "mem_size_mib": 64}, "serial": {"output": "stdout", "input": "none"},)"
        << R"( "labyrinth": {"lnics": [{"backend": {"type": "loopback"}}]}})";
    return path;
  }

  // name ("comm") -> "Seccomp:" field of every thread of pid.
  static std::multimap<std::string, std::string> thread_seccomp(pid_t pid) {
    std::multimap<std::string, std::string> out;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream status(task.path() / "status");
      std::string line, name, mode = "absent";
      while (std::getline(status, line)) {
        if (line.starts_with("Name:")) name = line.substr(line.find_first_not_of(" \t", 5));
        if (line.starts_with("Seccomp:")) mode = line.substr(line.find_first_not_of(" \t", 8));
      }
      out.emplace(name, mode);
    }
    return out;
  }

  // TSan's runtime starts a background thread of its own before main() (it flushes
  // shadow memory and never runs Labyrinth code); nothing of ours can filter it.
#ifdef LABYRINTH_TSAN
  static constexpr size_t kRuntimeThreads = 1;
#else
  static constexpr size_t kRuntimeThreads = 0;
#endif

  static size_t user_threads(const std::multimap<std::string, std::string>& threads) {
    size_t n = 0;
    for (const auto& t : threads) n += t.first.starts_with("kvm-") ? 0 : 1;
    return n;
  }

  fs::path dir_;
};

TEST_F(Seccomp, EveryThreadOfARunningVmIsFiltered) {
  Child c = Child::spawn({LABYRINTH_BINARY, "run", "--config", spin_config(2)});
  // Both vCPUs print "spin\n" (each installed its filter first) and then spin. Their
  // byte-wise port writes may interleave ("sspipinn..."): wait for all 10 bytes.
  const auto end = std::chrono::steady_clock::now() + 30s;
  while (c.out().size() < 10 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(2ms);
  }
  std::string bytes = c.out();
  std::ranges::sort(bytes);
  ASSERT_EQ(bytes, "\n\niinnppss") << c.err();
  // The vCPUs filter themselves before they run the guest; the main thread can only
  // filter itself after it has started them (threads inherit their creator's filter),
  // and under load it may not have done so yet when the guest prints: wait (bounded)
  // until every thread shows a filter, then check the last look.
  std::multimap<std::string, std::string> threads;
  for (const auto until = std::chrono::steady_clock::now() + 10s;;) {
    threads = thread_seccomp(c.pid());
    const auto filtered =
        std::ranges::count_if(threads, [](const auto& t) { return t.second == "2"; });
    if (static_cast<size_t>(filtered) + kRuntimeThreads >= threads.size() &&
        user_threads(threads) == 4u + kRuntimeThreads) {
      break;
    }
    if (std::chrono::steady_clock::now() > until) break;
    std::this_thread::sleep_for(5ms);
  }
  // vcpu0, vcpu1, the main thread (event loop) and the pool worker; newer kernels add
  // KVM's own worker ("kvm-nx-lpage-recovery", a kernel thread forked from a vCPU
  // thread at its first KVM_RUN, so it carries that thread's filter).
  EXPECT_EQ(user_threads(threads), 4u + kRuntimeThreads);
  EXPECT_EQ(threads.count("vcpu0"), 1u);
  EXPECT_EQ(threads.count("vcpu1"), 1u);
  size_t unfiltered = 0;
  for (const auto& [name, mode] : threads) {
    if (mode == "0" && name == "labyrinth" && unfiltered < kRuntimeThreads) {
      ++unfiltered;  // the sanitizer runtime's thread (same name as the main thread)
      continue;
    }
    EXPECT_EQ(mode, "2") << "thread " << name;
  }
  ::kill(c.pid(), SIGTERM);
  auto r = c.wait(20s);
  EXPECT_EQ(r.status, 143) << r.err;  // teardown ran under the event loop's filter
}

// Found by the Linux boot tests with filters on (LinuxBoot.* in the test VM: "vcpu thread
// made a forbidden system call openat (257)" when rtc_cmos read the clock): the CMOS
// device's gmtime_r() is the process's first time conversion, and glibc then loads the
// time zone (/etc/localtime) — on a vCPU thread, under its filter.
TEST_F(Seccomp, AGuestReadsTheCmosClockUnderTheVcpuFilter) {
  const std::string elf = (dir_ / "cmos.elf").string();
  testing::TestElf::with_code({
                                  0xB0, 0x00,              // mov al, 0 (seconds)
                                  0xE6, 0x70,              // out 0x70, al
                                  0xE4, 0x71,              // in al, 0x71
                                  0xB0, 0x04,              // mov al, 4 (hours)
                                  0xE6, 0x70,              // out 0x70, al
                                  0xE4, 0x71,              // in al, 0x71
                                  0x66, 0xBA, 0x01, 0x05,  // mov dx, 0x501
                                  0xB0, 0x00,              // mov al, 0
                                  0xEE,                    // out dx, al: exit 0
                                  0xEB, 0xFE,              // jmp .
                              })
      .write_to(elf);
  const std::string cfg = (dir_ / "cmos.json").string();
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << elf
                     << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},)"
                     << R"( "serial": {"output": "stdout", "input": "none"}})";
  auto r = Child::run({LABYRINTH_BINARY, "run", "--config", cfg}, 30s);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("forbidden system call"), std::string::npos) << r.err;
}

TEST_F(Seccomp, NoSeccompLeavesThreadsUnfiltered) {
  Child c = Child::spawn({LABYRINTH_BINARY, "run", "--no-seccomp", "--config", spin_config(1)});
  ASSERT_TRUE(c.wait_for_output("spin\n", 30s)) << c.err();
  const auto threads = thread_seccomp(c.pid());
  EXPECT_EQ(user_threads(threads), 3u + kRuntimeThreads);
  for (const auto& [name, mode] : threads) EXPECT_EQ(mode, "0") << "thread " << name;
  ::kill(c.pid(), SIGTERM);
  EXPECT_EQ(c.wait(20s).status, 143);
}

TEST_F(Seccomp, AForbiddenCallFromEachThreadKindEndsTheProcessWithStatusSix) {
  const std::string cfg = spin_config(1);
  for (const std::string kind : {"vcpu", "event_loop", "pool_worker"}) {
    SCOPED_TRACE(kind);
    ::setenv("LABYRINTH_TEST_SECCOMP_VIOLATION", kind.c_str(), 1);  // inherited by the child
    auto r = Child::run({LABYRINTH_BINARY, "run", "--config", cfg}, 30s);
    ::unsetenv("LABYRINTH_TEST_SECCOMP_VIOLATION");
    EXPECT_EQ(r.status, 6) << r.err;
    EXPECT_NE(r.err.find("labyrinth: seccomp: " + kind + " thread (tid "), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("made a forbidden system call socket (41); exit status 6\n"),
              std::string::npos)
        << r.err;
  }
}

TEST_F(Seccomp, TheHookDoesNothingWithoutFilters) {
  // --no-seccomp: no filter is installed, so the hook (which runs only after an
  // install) never fires and the VM runs normally.
  ::setenv("LABYRINTH_TEST_SECCOMP_VIOLATION", "event_loop", 1);
  Child c = Child::spawn({LABYRINTH_BINARY, "run", "--no-seccomp", "--config", spin_config(1)});
  ::unsetenv("LABYRINTH_TEST_SECCOMP_VIOLATION");
  ASSERT_TRUE(c.wait_for_output("spin\n", 30s)) << c.err();
  ::kill(c.pid(), SIGINT);
  EXPECT_EQ(c.wait(20s).status, 130);
}

}  // namespace
}  // namespace labyrinth
