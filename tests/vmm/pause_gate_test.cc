// The gate vCPU threads park on while a VM is paused (vmm/vcpu_runner.h), with plain
// threads standing in for the vCPU runners: no KVM needed.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "vmm/vcpu_runner.h"

namespace labyrinth::vmm {
namespace {

// What a runner's loop does with the gate: park while it is closed, count its turns.
struct Runner {
  Runner(PauseGate& gate, const std::atomic<bool>& stop)
      : thread([&gate, &stop, this] {
          while (!stop.load()) {
            if (gate.closed()) {
              gate.park();
              continue;
            }
            turns.fetch_add(1);
            std::this_thread::yield();
          }
        }) {}
  std::atomic<uint64_t> turns{0};
  std::thread thread;
};

TEST(PauseGate, ParksEveryRunnerUntilOpenedAndNoneRunsMeanwhile) {
  std::atomic<bool> stop{false};
  PauseGate gate(stop);
  std::vector<std::unique_ptr<Runner>> runners;
  for (int i = 0; i < 3; ++i) runners.push_back(std::make_unique<Runner>(gate, stop));
  for (int round = 0; round < 20; ++round) {
    gate.close();
    ASSERT_TRUE(gate.wait_parked(runners.size()));
    // Every runner is in park(): none of them makes a turn until the gate opens.
    std::vector<uint64_t> before;
    for (auto& r : runners) before.push_back(r->turns.load());
    for (int i = 0; i < 1000; ++i) std::this_thread::yield();
    for (size_t i = 0; i < runners.size(); ++i) EXPECT_EQ(runners[i]->turns.load(), before[i]);
    gate.open();
    for (auto& r : runners) {  // each runs again (a turn counted after the open)
      const uint64_t t = r->turns.load();
      while (r->turns.load() == t) std::this_thread::yield();
    }
  }
  stop.store(true);
  for (auto& r : runners) r->thread.join();
}

TEST(PauseGate, AStopReleasesParkedRunnersAndAWaitingPauser) {
  std::atomic<bool> stop{false};
  PauseGate gate(stop);
  Runner r(gate, stop);
  gate.close();
  ASSERT_TRUE(gate.wait_parked(1));
  // A pauser waiting for a runner that will never park (it has ended: a fatal exit).
  std::atomic<bool> waited{false}, parked_all{true};
  std::thread pauser([&] {
    parked_all = gate.wait_parked(2);
    waited = true;
  });
  stop.store(true);
  gate.wake_for_stop();
  r.thread.join();  // left park() for the stop, with the gate still closed
  pauser.join();
  EXPECT_TRUE(waited.load());
  EXPECT_FALSE(parked_all.load()) << "wait_parked says the VM is stopping";
}

}  // namespace
}  // namespace labyrinth::vmm
