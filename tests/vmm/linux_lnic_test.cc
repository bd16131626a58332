// Debian's stock kernel with an lnic: the out-of-tree driver (guest/linux/lnic/, built
// against the kit's headers and packed into the test initramfs) binds the PCI lnic, the
// interface comes up with the device's MAC and carrier, a pktgen backend sends a known
// number of frames which the kernel receives and counts, then `ip link set down` and
// `rmmod` give every page back: the VMM's pool books show no page with the guest.
// Needs standard KVM: label `linux`, run in the test VM
// (scripts/vm.sh ctest --test-dir build -L linux -R LinuxLnic).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/vmm/subprocess.h"

namespace labyrinth {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using testing::Child;
using namespace std::chrono_literals;

constexpr const char* kArgs = "console=ttyS0 reboot=k panic=-1";
constexpr const char* kMac = "02:4c:42:00:00:07";

uint64_t num(const json::value& v) {
  return v.to_number<uint64_t>();
}

class LinuxLnic : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0)
        << "/dev/kvm is not available: run the `linux` tests in the test VM (scripts/vm.sh ctest "
           "--test-dir build -L linux)";
    ASSERT_FALSE(fs::exists("/sys/module/kvm_pvm"))
        << "this host's KVM is the nested PVM one, where a stock kernel runs ~1000x too slowly: "
           "run the `linux` tests in the test VM (scripts/vm.sh ctest --test-dir build -L linux)";
    ASSERT_TRUE(fs::exists(LABYRINTH_LINUX_INITRAMFS)) << "run guest/linux/make_initramfs.sh";
    dir_ = fs::temp_directory_path() / ("labyrinth-lnic-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A Linux guest with one lnic whose pktgen sends `frames` frames once it is enabled.
  std::string config(uint64_t frames) {
    const std::string path = (dir_ / "vm.json").string();
    std::ofstream(path) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_LINUX_KERNEL
                        << R"(", "initrd_path": ")" << LABYRINTH_LINUX_INITRAMFS
                        << R"(", "boot_args": ")" << kArgs
                        << " labyrinth.test=lnic-rx labyrinth.mac=" << kMac
                        << " labyrinth.frames=" << frames
                        << R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},)"
                        << R"( "labyrinth": {"lnics": [{"id": "lnic0", "guest_mac": ")" << kMac
                        << R"(", "backend": {"type": "pktgen", "rate_pps": 1000, "burst": 1,)"
                        << R"( "frame_size": 128, "count": )" << frames << "}}]}}";
    return path;
  }
  Child::Result run(const std::string& cfg) {
    metrics_ = (dir_ / "metrics.json").string();
    return Child::run({LABYRINTH_BINARY, "run", "--config", cfg, "--metrics", metrics_}, 900s);
  }
  json::object metrics() const {
    std::ifstream in(metrics_);
    std::stringstream text;
    text << in.rdbuf();
    return json::parse(text.str()).as_object();
  }

  fs::path dir_;
  std::string metrics_;
};

TEST_F(LinuxLnic, KernelReceivesEveryGeneratedFrameAndUnloadReturnsEveryPage) {
  constexpr uint64_t kFrames = 1000;
  auto r = run(config(kFrames));
  // The guest's own lines and the driver's, for the log.
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("labyrinth-lnic:") || line.find(": stopped: ") != std::string::npos) {
      std::cout << "  guest: " << line << "\n";
    }
  }
  std::cout << "  labyrinth run: " << r.seconds << " s wall\n";
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("labyrinth-test: lnic-rx status 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string(" ") + kMac + " carrier 1"), std::string::npos) << r.out;

  // The kernel's count (/sys/class/net/*/statistics) is every frame the device delivered.
  std::smatch kernel;
  ASSERT_TRUE(std::regex_search(r.out, kernel, std::regex("labyrinth-lnic: rx_packets ([0-9]+)")))
      << r.out;
  const json::object m = metrics();
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  EXPECT_EQ(num(nic.at("rx_frames")), kFrames) << json::serialize(nic);
  EXPECT_EQ(std::stoull(kernel[1].str()), num(nic.at("rx_frames")));

  // The driver's own report at ifdown: no completion refused, nothing held, not broken.
  std::smatch report;
  ASSERT_TRUE(std::regex_search(
      r.out, report,
      std::regex("stopped: rx_packets ([0-9]+) .* bad_addr 0 bad_len 0 bad_flags 0 page_twice 0 "
                 "seq_gaps 0 seq_backward 0 no_skb 0 drained 0 held 0 device_pages_held 0 "
                 "violations 0 broken 0")))
      << r.out;
  EXPECT_EQ(std::stoull(report[1].str()), kFrames);

  // After rmmod the pool's books show no page with the guest, and every page came back.
  EXPECT_EQ(num(nic.at("pages_with_guest")), 0u) << json::serialize(nic);
  EXPECT_EQ(num(nic.at("pages_returned")), kFrames);
  EXPECT_EQ(num(m.at("pool").at("in_use")), 0u) << json::serialize(m.at("pool"));
  EXPECT_EQ(num(m.at("pool").at("violations")), 0u);
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
  EXPECT_EQ(num(nic.at("controls").at("rx_stops")), 1u);
}

}  // namespace
}  // namespace labyrinth
