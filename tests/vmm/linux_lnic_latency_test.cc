// `labyrinth latency` with Debian's stock kernel (configs/linux_lnic_latency.json): the
// test initramfs's init (labyrinth.test=lnic-latency) loads lnic.ko and brings the
// interface up; the driver's MSI-X handler answers the warm-up probe and the floor
// signals (floor_guest_tsc in the RX ring header) and stamps completions. Every span of
// the report has samples, nothing was refused, the report names the guest kind and its
// observed idle mode, and the pool's books balance after the run. Needs standard KVM:
// label `linux`, run in the test VM (scripts/vm.sh ctest --test-dir build -L linux -R
// LinuxLnicLatency).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "tests/vmm/linux_guest_fixture.h"
#include "tests/vmm/subprocess.h"

namespace labyrinth {
namespace {

namespace json = boost::json;
using testing::Child;
using namespace std::chrono_literals;

uint64_t num(const json::value& v) {
  return v.to_number<uint64_t>();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class LinuxLnicLatency : public testing::LinuxGuestTest {
 protected:
  void SetUp() override {
    LinuxGuestTest::SetUp();
    require_standard_kvm();
  }

  // The shipped configs/linux_lnic_latency.json, with the kit's kernel and initramfs at
  // their absolute paths (its own are relative to the source tree).
  std::string config() const {
    json::object cfg =
        json::parse(slurp(std::string(LABYRINTH_SOURCE_DIR) + "/configs/linux_lnic_latency.json"))
            .as_object();
    cfg["boot-source"].as_object()["kernel_image_path"] = LABYRINTH_LINUX_KERNEL;
    cfg["boot-source"].as_object()["initrd_path"] = LABYRINTH_LINUX_INITRAMFS;
    const std::string path = (dir_ / "linux_lnic_latency.json").string();
    std::ofstream(path) << json::serialize(cfg);
    return path;
  }
};

TEST_F(LinuxLnicLatency, DriverAnswersFloorsAndEverySpanHasSamples) {
  const std::string js = (dir_ / "lat.json").string(), serial = (dir_ / "guest.log").string();
  auto r = Child::run({LABYRINTH_BINARY, "latency", "--seconds", "4", "--json", js, "--serial-out",
                       serial, "--config", config()},
                      900s);
  const std::string guest = slurp(serial);
  std::cout << "  labyrinth latency (Linux guest): " << r.seconds << " s wall\n" << r.out;
  ASSERT_FALSE(r.timed_out) << r.out << r.err << guest;
  ASSERT_EQ(r.status, 0) << r.out << r.err << guest;
  EXPECT_NE(guest.find("labyrinth-test: lnic-latency waiting"), std::string::npos) << guest;
  EXPECT_EQ(guest.find("device broken"), std::string::npos) << guest;

  const json::object j = json::parse(slurp(js)).as_object();
  // Every span measured: alloc and host_rx by the device, guest from the pages the
  // driver returned with its handler's stamp, floor from its answers to floor signals.
  for (const char* span : {"alloc", "host_rx", "guest", "floor"}) {
    EXPECT_GT(num(j.at("spans").at(span).at("count")), 0u) << span << "\n" << r.out;
  }
  const json::object& m = j.at("metrics").as_object();
  const json::object& nic = m.at("lnics").as_array().at(0).as_object();
  EXPECT_GT(num(nic.at("floor").at("sent")), 0u) << json::serialize(nic.at("floor"));
  for (const auto& [kind, count] : nic.at("violations").as_object()) {
    EXPECT_EQ(num(count), 0u) << kind;
  }
  EXPECT_NE(r.out.find(", violations 0,"), std::string::npos) << r.out;

  // The guest's kind, in the JSON and the notes, and its idle mode as KVM observed it.
  EXPECT_EQ(j.at("guest_kind").as_string(), "linux");
  EXPECT_EQ(std::string(j.at("notes").at("guest kind").as_string()).rfind("Linux (lnic.ko)", 0), 0u)
      << r.out;
  ASSERT_TRUE(j.contains("vcpu0_halt_exits")) << r.out;
  EXPECT_EQ(j.at("guest_idle_mode").as_string(),
            num(j.at("vcpu0_halt_exits")) > 0 ? "halted" : "never halted");
  EXPECT_NE(r.out.find("guest idle mode: "), std::string::npos) << r.out;

  // The pool's books after the run: every page not free is one the guest still holds,
  // and every page delivered came back or is still with the guest.
  const json::object& pool = m.at("pool").as_object();
  EXPECT_EQ(num(pool.at("in_use")), num(nic.at("pages_with_guest"))) << json::serialize(m);
  EXPECT_EQ(num(pool.at("free_clean")) + num(pool.at("free_dirty")) + num(pool.at("in_use")),
            num(pool.at("total_pages")))
      << json::serialize(pool);
  EXPECT_EQ(num(pool.at("violations")), 0u);
  EXPECT_EQ(num(nic.at("rx_frames")),
            num(nic.at("pages_returned")) + num(nic.at("pages_with_guest")))
      << json::serialize(nic);
}

}  // namespace
}  // namespace labyrinth
