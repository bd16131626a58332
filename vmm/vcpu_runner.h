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
//   install_kick_handler();                 // once, before any runner starts
//   VcpuRunner r(*vcpu, pio, mmio, machine, stop_flag);
//   r.start();  ...  stop_flag = true; r.kick();  r.join();
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
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
  std::expected<void, Error> start();
  // Makes the thread leave KVM_RUN now. Thread-safe; call after setting the stop flag.
  void kick();
  void join();

  uint64_t exits() const noexcept { return exits_.load(std::memory_order_relaxed); }

 private:
  void run();
  // Returns false when the VM must stop (after reporting).
  bool handle_exit();
  void handle_io(kvm_run* run);
  void report_fatal(const char* what, int status);

  Vcpu& vcpu_;
  const devices::Bus& pio_;
  const devices::Bus& mmio_;
  devices::VmControl& control_;
  const std::atomic<bool>& stop_;
  std::function<void()> thread_init_;
  CoalescedPio* coalesced_ = nullptr;
  std::thread thread_;
  std::atomic<uint64_t> exits_{0};  // relaxed: a statistic
};

}  // namespace labyrinth::vmm
