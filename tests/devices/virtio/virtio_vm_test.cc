// virtio-net end to end with a hostile guest: build/labyrinth runs guest/programs/
// virtio_hostile.elf (a freestanding driver that writes malformed queues, chains and
// registers) on real KVM with a TAP backend; every bad input is counted by reason, the
// device keeps returning well-formed chains, the VMM exits cleanly. Needs /dev/kvm and
// CAP_NET_ADMIN (labyrinth creates the TAP, which goes away when it exits).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/json/parse.hpp>

#include "tests/vmm/subprocess.h"

namespace labyrinth::devices::virtio {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using labyrinth::testing::Child;
using namespace std::chrono_literals;

uint64_t num(const json::value& v) {
  return v.to_number<uint64_t>();
}

TEST(VirtioHostileGuest, EveryMalformedInputIsCountedAndTheDeviceKeepsWorking) {
  ASSERT_EQ(::access("/dev/kvm", R_OK | W_OK), 0) << "needs /dev/kvm";
  const fs::path dir =
      fs::temp_directory_path() / ("labyrinth-virtio-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string cfg = (dir / "vm.json").string(), metrics = (dir / "m.json").string();
  const std::string tap = "lvh" + std::to_string(::getpid() % 100000);
  std::ofstream(cfg) << R"({"boot-source": {"kernel_image_path": ")" << LABYRINTH_GUEST_DIR
                     << R"(/virtio_hostile.elf"}, "machine-config": {"vcpu_count": 1,)"
                     << R"( "mem_size_mib": 128}, "serial": {"input": "none"},)"
                     << R"( "network-interfaces": [{"iface_id": "eth0", "host_dev_name": ")" << tap
                     << R"("}]})";
  auto r = Child::run({LABYRINTH_BINARY, "run", "--config", cfg, "--metrics", metrics}, 300s);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("virtio_hostile: checks="), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failed=0"), std::string::npos) << r.out;

  std::ifstream in(metrics);
  std::stringstream text;
  text << in.rdbuf();
  const json::object m = json::parse(text.str()).at("virtio_net").at(0).as_object();
  const json::object& why = m.at("malformed_by_reason").as_object();
  EXPECT_EQ(num(why.at("head index out of range")), 1u);
  EXPECT_EQ(num(why.at("chain longer than the queue (a loop)")), 2u);
  EXPECT_EQ(num(why.at("zero-length buffer")), 1u);
  EXPECT_EQ(num(why.at("buffer outside guest RAM")), 5u) << "huge, LAPIC, 2^48, wrap, RAM end";
  EXPECT_EQ(num(why.at("next index out of range")), 1u);
  EXPECT_EQ(num(why.at("indirect descriptor (not negotiated)")), 1u);
  EXPECT_EQ(num(why.at("readable buffer after a writable one")), 1u);
  // avail.idx far ahead stops the device (DEVICE_NEEDS_RESET, which the guest waits
  // for): counted once however many kicks or passes see it, until the guest's reset.
  EXPECT_EQ(num(why.at("avail.idx is more than a queue ahead")), 1u);
  EXPECT_EQ(num(m.at("needs_reset")), 1u);
  EXPECT_EQ(num(m.at("tx_drops").at("malformed")), 1u) << "shorter than the header";
  // 16 well-formed frames: sent, or refused by the TAP nobody brought up.
  EXPECT_EQ(num(m.at("tx_frames")) + num(m.at("tx_drops").at("backend")), 16u);
  const json::object& t = m.at("transport").as_object();
  EXPECT_EQ(num(t.at("queues_rejected")), 6u);
  EXPECT_EQ(num(t.at("features_rejected")), 1u);
  EXPECT_EQ(num(t.at("bad_register_access")), 5u);
  EXPECT_EQ(num(t.at("activations")), 2u) << "the first start, and the one after the reset";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace labyrinth::devices::virtio
