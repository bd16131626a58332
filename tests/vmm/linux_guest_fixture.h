// The common ground of the stock-Linux tests (tests/vmm/linux_*_test.cc): a scratch
// directory per test, the kit's kernel and initramfs, and the check that the host's KVM
// can run a stock kernel at all.
//
//   class LinuxNet : public testing::LinuxGuestTest {
//     void SetUp() override {
//       LinuxGuestTest::SetUp();
//       require_standard_kvm();  // every test here boots Linux
//     }
//   };
//
// The executables that include it are compiled with LABYRINTH_LINUX_KERNEL and
// LABYRINTH_LINUX_INITRAMFS (tests/vmm/CMakeLists.txt, labyrinth_linux_test()).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace labyrinth::testing {

// Booting Debian's kernel with the initramfs of guest/linux/make_initramfs.sh.
constexpr const char* kLinuxKernel = LABYRINTH_LINUX_KERNEL;
constexpr const char* kLinuxInitramfs = LABYRINTH_LINUX_INITRAMFS;

class LinuxGuestTest : public ::testing::Test {
 protected:
  // A fresh dir_ (removed by TearDown); the kit must have been fetched and packed.
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("labyrinth-linux-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    ASSERT_TRUE(std::filesystem::exists(kLinuxKernel))
        << kLinuxKernel << " is missing: run guest/linux/fetch_kernel.sh";
    ASSERT_TRUE(std::filesystem::exists(kLinuxInitramfs))
        << kLinuxInitramfs << " is missing: run guest/linux/make_initramfs.sh";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Booting needs standard KVM: fails (never skips) with the reason on a nested PVM host
  // or without /dev/kvm. Call it through ASSERT_NO_FATAL_FAILURE or from SetUp.
  static void require_standard_kvm() {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "/dev/kvm is not available: run the `linux` tests in the test VM (scripts/vm.sh ctest "
           "--test-dir build -L linux)";
    ASSERT_FALSE(std::filesystem::exists("/sys/module/kvm_pvm"))
        << "this host's KVM is the nested PVM one (/sys/module/kvm_pvm), where a stock kernel "
           "runs ~1000x too slowly: run the `linux` tests in the test VM (scripts/vm.sh "
           "ctest --test-dir build -L linux)";
  }

  std::filesystem::path dir_;
};

}  // namespace labyrinth::testing
