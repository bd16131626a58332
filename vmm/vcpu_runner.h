// vmm/vcpu_runner.h — the thread that runs one vCPU.
//
// Loop: KVM_RUN, then replay the port writes KVM coalesced (if any), then dispatch the
// exit: port I/O and MMIO go to their Bus; a
// triple fault (KVM_EXIT_SHUTDOWN), failed entry, internal error or unknown exit is
// reported once at error level with the registers and ends the VM through VmControl
// (status 3 or 4). The loop ends when the shared stop flag is set.
//
// Stopping (kick): the stopper sets the flag, sets kvm_run.immediate_exit and sends
// SIGUSR1 to the thread. SIGUSR1 has an empty handler installed without SA_RESTART,
// so a KVM_RUN in progress returns EINTR; a KVM_RUN about to start returns at once
// because of immediate_exit. The thread blocks every other signal.
//
// Pausing (PATCH /vm, PauseGate): the pauser closes the gate and kicks every runner the
// same way; a runner that finds the gate closed at the top of its loop parks on it (a
// condition variable: no spinning, no KVM_RUN) until the gate opens or the VM stops,
// then clears immediate_exit and enters KVM_RUN again. The pauser waits until every
// runner is parked, so "paused" means no vCPU executes guest code.
//
//   install_kick_handler();                 // once, before any runner starts
//   VcpuRunner r(*vcpu, pio, mmio, machine, stop_flag);
//   r.start();  ...  stop_flag = true; r.kick();  r.join();
#pragma once

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <mutex>
#include <thread>

#include "devices/bus/bus.h"
#include "devices/vm_control.h"
#include "vmm/error.h"
#include "vmm/kvm/coalesced_pio.h"
#include "vmm/kvm/vcpu.h"

namespace labyrinth::vmm {

inline constexpr int kKickSignal = SIGUSR1;

// Installs the empty SIGUSR1 handler (no SA_RESTART). Idempotent.
void install_kick_handler();

// Where a VM's vCPU threads park while it is paused. Thread-safe. Lock: mu_ is a leaf.
class PauseGate {
 public:
  explicit PauseGate(const std::atomic<bool>& stop) : stop_(stop) {}
  // Pauser: runners park at the top of their next loop turn (kick them after this).
  void close();
  // Pauser: blocks until `runners` threads are parked, or the VM is stopping. Returns
  // false in the latter case.
  bool wait_parked(size_t runners);
  // Pauser: parked runners go on.
  void open();
  // After the stop flag is set: parked runners (and a waiting pauser) see it.
  void wake_for_stop();
  bool closed() const { return closed_flag_.load(std::memory_order_acquire); }
  // Runner: waits while the gate is closed and the VM is not stopping.
  void park();

 private:
  const std::atomic<bool>& stop_;
  std::mutex mu_;  // guards closed_, parked_
  std::condition_variable cv_;
  bool closed_ = false;
  size_t parked_ = 0;
  std::atomic<bool> closed_flag_{false};  // closed_'s lock-free mirror for the runners' loop
};

class VcpuRunner {
 public:
  VcpuRunner(Vcpu& vcpu, const devices::Bus& pio, const devices::Bus& mmio,
             devices::VmControl& control, const std::atomic<bool>& stop)
      : vcpu_(vcpu), pio_(pio), mmio_(mmio), control_(control), stop_(stop) {}
  ~VcpuRunner() { join(); }
  VcpuRunner(const VcpuRunner&) = delete;
  VcpuRunner& operator=(const VcpuRunner&) = delete;

  // Runs on the new thread before its first KVM_RUN (the vCPU's seccomp filter).
  void set_thread_init(std::function<void()> init) { thread_init_ = std::move(init); }
  // The VM's coalesced port writes, replayed before each exit is dispatched (so a
  // queued CONFIG_ADDRESS lands before the CONFIG_DATA access that exited). Optional.
  void set_coalesced(CoalescedPio* coalesced) { coalesced_ = coalesced; }
  // The VM's pause gate (PATCH /vm). Optional; set before start().
  void set_pause_gate(PauseGate* gate) { gate_ = gate; }
  std::expected<void, Error> start();
  // A change of the vCPU's state (an ACPI S3 wake: vmm/machine.h) that this thread makes
  // before its next KVM_RUN, after completing the exit it was in (KVM_RUN with
  // immediate_exit: KVM finishes a port write only on re-entry, and would otherwise
  // advance the new RIP past that instruction). Call while the runner is parked.
  // A failure ends the VM like a failed KVM_RUN. Thread-safe.
  void request_reset(std::function<std::expected<void, Error>(Vcpu&)> reset);
  // Makes the thread leave KVM_RUN now. Thread-safe; call after setting the stop flag.
  void kick();
  void join();

  uint64_t exits() const noexcept { return exits_.load(std::memory_order_relaxed); }

 private:
  void run();
  // Returns false when the VM must stop (after reporting).
  bool handle_exit();
  // Applies a requested reset (request_reset); false when the VM must stop.
  bool apply_reset();
  void handle_io(kvm_run* run);
  void report_fatal(const char* what, int status);

  Vcpu& vcpu_;
  const devices::Bus& pio_;
  const devices::Bus& mmio_;
  devices::VmControl& control_;
  const std::atomic<bool>& stop_;
  std::function<void()> thread_init_;
  CoalescedPio* coalesced_ = nullptr;
  PauseGate* gate_ = nullptr;
  std::mutex reset_mu_;  // guards reset_; a leaf
  std::function<std::expected<void, Error>(Vcpu&)> reset_;
  std::thread thread_;
  std::atomic<uint64_t> exits_{0};  // relaxed: a statistic
};

}  // namespace labyrinth::vmm
