// Debian's stock kernel boots in labyrinth with the guest/linux/ initramfs.
//
// These tests need standard KVM (kvm_intel / kvm_amd): under a nested PVM host a stock
// kernel's CPL-0 code runs ~1000x slower. They carry the ctest label `linux` and run in
// the test VM; on a PVM host they fail (not skip) and say so. The bad-input cases fail
// at configuration time and need no KVM at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/vmm/linux_guest_fixture.h"
#include "tests/vmm/subprocess.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
using testing::Child;
using namespace std::chrono_literals;

// A user's command line: no i8042.* options to steer the kernel around a device.
constexpr const char* kArgs = "console=ttyS0 reboot=k panic=-1";

class LinuxBoot : public testing::LinuxGuestTest {
 protected:
  std::string config(const std::string& test, int vcpus = 1, int mem_mib = 256,
                     const std::string& kernel = LABYRINTH_LINUX_KERNEL,
                     const std::string& initrd = LABYRINTH_LINUX_INITRAMFS,
                     const std::string& args = "") {
    const std::string path = (dir_ / ("vm" + std::to_string(n_++) + ".json")).string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << kernel
                        << R"(", "initrd_path": ")" << initrd << R"(", "boot_args": ")"
                        << (args.empty() ? std::string(kArgs) + " labyrinth.test=" + test : args)
                        << R"("}, "machine-config": {"vcpu_count": )" << vcpus
                        << R"(, "mem_size_mib": )" << mem_mib
                        << R"(}, "serial": {"input": "none"}})";
    return path;
  }
  static Child::Result run(const std::string& cfg, const std::string& log_level = "warn") {
    return Child::run({LABYRINTH_BINARY, "run", "--config", cfg, "--log-level", log_level},
                      600s);  // a hang guard
  }
  // A config error: status 2 and exactly one line on stderr, which names the field.
  static void expect_config_error(const Child::Result& r, const std::string& field) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.err.find("labyrinth: config error: " + field + ": "), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
  }

  int n_ = 0;
};

TEST_F(LinuxBoot, ReachesInitWithOneVcpu) {
  require_standard_kvm();
  auto r = run(config("boot"));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("labyrinth-init: reached init"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("labyrinth-test: boot status 0"), std::string::npos);
  // ACPI (vmm/boot/acpi.h): the kernel finds the RSDP, takes CPUs and the IOAPIC from the
  // MADT and the host bridge from the DSDT, offers S5, and has nothing to complain about.
  EXPECT_NE(r.out.find("ACPI: RSDP 0x00000000000E0000 000024 (v02 LABYRI)"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("A valid RSDP was not found"), std::string::npos) << r.out;
  for (const char* bad : {"ACPI BIOS Error", "ACPI BIOS Warning", "ACPI Error", "ACPI Warning"}) {
    EXPECT_EQ(r.out.find(bad), std::string::npos) << bad << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("ACPI: Using ACPI (MADT) for SMP configuration information"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("IOAPIC[0]: apic_id 2, version 17, address 0xfec00000, GSI 0-23"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00])"), std::string::npos)
      << r.out;
  // ECAM (devices/pci/pci_ecam.h) from the MCFG, taken for bus 0 and reserved; without it
  // the host bridge's setup warned that extended configuration space was out of reach.
  EXPECT_NE(r.out.find("PCI: MMCONFIG for domain 0000 [bus 00-00] at [mem "
                       "0xc0000000-0xc00fffff] (base 0xc0000000)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("PCI: MMCONFIG at [mem 0xc0000000-0xc00fffff] reserved in E820"),
            std::string::npos)
      << r.out;
  for (const char* bad : {"fail to add MMCONFIG", "can't access extended", "only partially covers",
                          "not using MMCONFIG", "not reserved in ACPI motherboard resources",
                          "isn't reserved", "OS requires [ExtendedConfig"}) {
    EXPECT_EQ(r.out.find(bad), std::string::npos) << bad << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("(supports S0 S5)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[8086:0d57] type 00 class 0x060000"), std::string::npos)
      << "the PCI host bridge was found";
  EXPECT_EQ(r.out.find("rtc_cmos rtc_cmos: broken"), std::string::npos) << "CMOS works";
  // The i8042 probe finds the keyboard port and, at once, no AUX port: a controller
  // whose configuration byte ignored 0xA7 made the kernel warn after its timeouts.
  EXPECT_NE(r.out.find("serio: i8042 KBD port at 0x60,0x64 irq 1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("serio: i8042 AUX port"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Is this a SiS?"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("i8042.noaux"), std::string::npos) << r.out;
  // atkbd's probe finds a keyboard at once (ps2_keyboard.h): one that answered nothing
  // cost libps2's ACK timeouts and left none.
  EXPECT_NE(r.out.find("input: AT Translated Set 2 keyboard as /devices/platform/i8042/serio0"),
            std::string::npos)
      << r.out;
  for (const char* bad :
       {"atkbd serio0: Failed", "atkbd serio0: Spurious", "i8042: Can't", "Unknown key"}) {
    EXPECT_EQ(r.out.find(bad), std::string::npos) << bad << "\n" << r.out;
  }
  // The LAPIC timer runs in TSC-deadline mode: no calibration against the PIT.
  EXPECT_NE(r.out.find("TSC deadline timer available"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("APIC timer disabled"), std::string::npos) << r.out;
  // The legacy ports the kernel probes (COM2-4, Super I/O, a DMA page register) are absent
  // on purpose (absent_ports.h): 67 rate-limited "unmapped" warnings on stderr before.
  EXPECT_EQ(r.err.find("bus: unmapped"), std::string::npos) << r.err;
}

// The same kernel unpacked from the bzImage (guest/linux/fetch_kernel.sh --vmlinux) boots
// straight into its own startup_64, without the decompressor: the kit's ELF has its
// per-CPU segment linked at 0, which the loader once took for a test guest's layout.
TEST_F(LinuxBoot, ReachesInitFromTheUnpackedVmlinux) {
  require_standard_kvm();
  auto r =
      run(config("poweroff", 1, 256, LABYRINTH_LINUX_VMLINUX, LABYRINTH_LINUX_INITRAMFS), "debug");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // Entered at e_entry, startup_64 itself (a bzImage's is its load address + 0x200).
  EXPECT_NE(r.err.find("linux: kernel at 0x1000000 (+0x"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(", entry 0x1000000, initrd"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("labyrinth-init: reached init"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("labyrinth-test: poweroff"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reboot: Power down"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Kernel panic"), std::string::npos) << r.out;
}

TEST_F(LinuxBoot, BringsUpEveryVcpu) {
  require_standard_kvm();
  auto r = run(config("cpus=2", 2));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 CPU(s) online, 2 expected"), std::string::npos) << r.out;
  // Both from the MADT: LAPIC IDs 0 and 1, the IOAPIC with ID vcpus + 1.
  EXPECT_NE(r.out.find("ACPI: Using ACPI (MADT) for SMP configuration information"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("IOAPIC[0]: apic_id 3,"), std::string::npos) << r.out;
}

// A kernel told not to use ACPI still finds the MP table, and its power-off is a halt
// that the console watch ends the VM on.
TEST_F(LinuxBoot, AcpiOffUsesTheMpTableAndHalts) {
  require_standard_kvm();
  auto r = run(config("poweroff", 2, 256, LABYRINTH_LINUX_KERNEL, LABYRINTH_LINUX_INITRAMFS,
                      std::string(kArgs) + " acpi=off labyrinth.test=poweroff"));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("found SMP MP-table"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ACPI: Using ACPI (MADT)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("smp: Brought up 1 node, 2 CPUs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reboot: System halted"), std::string::npos) << r.out;
}

TEST_F(LinuxBoot, GuestStatusBecomesTheExitStatus) {
  require_standard_kvm();
  auto r = run(config("exit=7"));
  EXPECT_EQ(r.status, 7) << r.out << r.err;
}

TEST_F(LinuxBoot, RebootAndPoweroffEndWithZero) {
  require_standard_kvm();
  auto r = run(config("reboot"));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("reboot: Restarting system"), std::string::npos) << r.out;
  // An ACPI power-off: the kernel writes S5 to the PM1a control block (acpi_pm.h), which
  // ends the VM — not the console watch, which no longer acts on "Power down".
  r = run(config("poweroff"), "debug");
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("reboot: Power down"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("shutdown requested: guest powered off (ACPI S5) (status 0)"),
            std::string::npos)
      << r.err;
}

TEST_F(LinuxBoot, PanicEndsNonZeroWithTheLastConsoleLines) {
  require_standard_kvm();
  auto r = run(config("panic"));
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("the guest kernel panicked; its last console lines:"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Kernel panic - not syncing: sysrq triggered crash"), std::string::npos)
      << r.err;
}

TEST_F(LinuxBoot, BadInputIsAOneLineConfigError) {
  // Not a kernel.
  const std::string text = (dir_ / "text.bin").string();
  std::ofstream(text) << "this is not a kernel";
  auto r = run(config("boot", 1, 256, text));
  expect_config_error(r, "boot-source.kernel_image_path");
  EXPECT_NE(r.err.find("is none of the kernels Labyrinth boots"), std::string::npos);

  // A truncated bzImage: its setup header promises more bytes than the file has.
  const std::string cut = (dir_ / "truncated.bzImage").string();
  fs::copy_file(LABYRINTH_LINUX_KERNEL, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  r = run(config("boot", 1, 256, cut));
  expect_config_error(r, "boot-source.kernel_image_path");
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;

  // An initramfs larger than the RAM left above the kernel (a sparse 200 MiB file).
  const std::string big = (dir_ / "big.cpio").string();
  std::ofstream(big).close();
  fs::resize_file(big, 200 << 20);
  r = run(config("boot", 1, 256, LABYRINTH_LINUX_KERNEL, big));
  expect_config_error(r, "boot-source.initrd_path");

  // A command line longer than the kernel's cmdline_size (2047 for Debian's).
  r = run(config("boot", 1, 256, LABYRINTH_LINUX_KERNEL, LABYRINTH_LINUX_INITRAMFS,
                 std::string(kArgs) + " " + std::string(3000, 'x')));
  expect_config_error(r, "boot-source.boot_args");
  EXPECT_NE(r.err.find("cmdline_size 2047"), std::string::npos) << r.err;

  // Too little RAM for the kernel to decompress itself (init_size).
  r = run(config("boot", 1, 64));
  expect_config_error(r, "machine-config.mem_size_mib");
}

}  // namespace
}  // namespace labyrinth
