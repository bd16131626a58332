#include "vmm/vcpu_runner.h"

#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <string>
#include <utility>

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "vmm/report/start_trace.h"

namespace labyrinth::vmm {

namespace {

void on_kick(int) {}  // only interrupts KVM_RUN

const char* exit_name(uint32_t reason) {
  switch (reason) {
    case KVM_EXIT_UNKNOWN:
      return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION:
      return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_HYPERCALL:
      return "KVM_EXIT_HYPERCALL";
    case KVM_EXIT_DEBUG:
      return "KVM_EXIT_DEBUG";
    case KVM_EXIT_HLT:
      return "KVM_EXIT_HLT";
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return "KVM_EXIT_IRQ_WINDOW_OPEN";
    case KVM_EXIT_SHUTDOWN:
      return "KVM_EXIT_SHUTDOWN (triple fault)";
    case KVM_EXIT_FAIL_ENTRY:
      return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR:
      return "KVM_EXIT_INTERNAL_ERROR";
    case KVM_EXIT_SYSTEM_EVENT:
      return "KVM_EXIT_SYSTEM_EVENT";
    default:
      return "unknown exit";
  }
}

}  // namespace

void install_kick_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_kick;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
  sigaction(kKickSignal, &sa, nullptr);
}

void PauseGate::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  closed_flag_.store(true, std::memory_order_release);
}

bool PauseGate::wait_parked(size_t runners) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return parked_ >= runners || stop_.load(std::memory_order_acquire); });
  return parked_ >= runners;
}

void PauseGate::open() {
  {
    std::lock_guard lock(mu_);
    closed_ = false;
    closed_flag_.store(false, std::memory_order_release);
  }
  cv_.notify_all();
}

void PauseGate::wake_for_stop() {
  {
    std::lock_guard lock(mu_);
  }  // a runner or pauser between its check and its wait has
     // the lock: the notify cannot fall before its wait
  cv_.notify_all();
}

void PauseGate::park() {
  std::unique_lock lock(mu_);
  ++parked_;
  cv_.notify_all();  // the pauser counts us
  cv_.wait(lock, [&] { return !closed_ || stop_.load(std::memory_order_acquire); });
  --parked_;
}

std::expected<void, Error> VcpuRunner::start() {
  // The thread inherits this mask: everything but the kick signal blocked, so
  // SIGINT/SIGTERM go to the event loop's thread.
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, kKickSignal);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGFPE);
  sigdelset(&all, SIGILL);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    spdlog::error("vcpu {}: cannot start thread: {}", vcpu_.index(), e.what());
    return std::unexpected(Error::thread_failed);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return {};
}

void VcpuRunner::kick() {
  vcpu_.request_immediate_exit();
  if (thread_.joinable()) pthread_kill(thread_.native_handle(), kKickSignal);
}

void VcpuRunner::join() {
  if (thread_.joinable()) thread_.join();
}

void VcpuRunner::run() {
  pthread_setname_np(pthread_self(), fmt::format("vcpu{}", vcpu_.index()).c_str());
  if (thread_init_) thread_init_();
  start_trace().mark_first_run();  // --trace-start: the guest's first instruction is next
  while (!stop_.load(std::memory_order_acquire)) {  // pairs with the stopper's release store
    if (gate_ != nullptr && gate_->closed()) {
      gate_->park();
      // The pause's kick left immediate_exit set: cleared, or every KVM_RUN would return
      // at once. The fence orders the clear before the loop's stop check, so a stop kick
      // that the clear overwrote is seen through the flag instead.
      vcpu_.clear_immediate_exit();
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!apply_reset()) return;
      continue;
    }
    auto r = vcpu_.run();
    if (!r) {
      if (r.error() == Error::interrupted) continue;  // kicked or signalled: re-check stop
      report_fatal("KVM_RUN failed", kExitKvmFailure);
      return;
    }
    exits_.fetch_add(1, std::memory_order_relaxed);
    if (coalesced_ != nullptr) coalesced_->replay(pio_);
    if (!handle_exit()) return;
  }
}

void VcpuRunner::request_reset(std::function<std::expected<void, Error>(Vcpu&)> reset) {
  std::lock_guard lock(reset_mu_);
  reset_ = std::move(reset);
}

bool VcpuRunner::apply_reset() {
  std::function<std::expected<void, Error>(Vcpu&)> reset;
  {
    std::lock_guard lock(reset_mu_);
    reset = std::exchange(reset_, nullptr);
  }
  if (!reset) return true;
  // The exit in hand completes on re-entry: enter with immediate_exit so that KVM
  // finishes it and returns at once, before the registers change under it.
  vcpu_.request_immediate_exit();
  auto r = vcpu_.run();
  vcpu_.clear_immediate_exit();
  std::atomic_thread_fence(std::memory_order_seq_cst);  // as after a park (run())
  if (!r && r.error() != Error::interrupted) {
    report_fatal("KVM_RUN (completing the exit before a reset) failed", kExitKvmFailure);
    return false;
  }
  if (auto done = reset(vcpu_); !done) {
    report_fatal("vCPU reset failed", kExitKvmFailure);
    return false;
  }
  return true;
}

void VcpuRunner::handle_io(kvm_run* run) {
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  const size_t size = run->io.size;
  // kvm_run lives in the vCPU mmap (KVM_GET_VCPU_MMAP_SIZE bytes); KVM keeps
  // data_offset + size * count inside it.
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> data(base + i * size, size);
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      pio_.write(run->io.port, data);
    } else {
      pio_.read(run->io.port, data);
    }
  }
}

bool VcpuRunner::handle_exit() {
  kvm_run* run = vcpu_.run_data();
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      handle_io(run);
      return true;
    case KVM_EXIT_MMIO: {
      const size_t len = std::min<size_t>(run->mmio.len, sizeof(run->mmio.data));
      if (run->mmio.is_write) {
        mmio_.write(run->mmio.phys_addr, std::span<const uint8_t>(run->mmio.data, len));
      } else {
        mmio_.read(run->mmio.phys_addr, std::span<uint8_t>(run->mmio.data, len));
      }
      return true;
    }
    case KVM_EXIT_HLT:
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
      return true;  // with the in-kernel irqchip these are rare; just re-enter
    case KVM_EXIT_SHUTDOWN:
      report_fatal("guest crashed", kExitGuestCrashed);
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH) {
        report_fatal("guest crashed", kExitGuestCrashed);
      } else {
        control_.request_shutdown(0, "guest requested shutdown/reset");
      }
      return false;
    case KVM_EXIT_FAIL_ENTRY:
    case KVM_EXIT_INTERNAL_ERROR:
    default:
      report_fatal("KVM failure", kExitKvmFailure);
      return false;
  }
}

void VcpuRunner::report_fatal(const char* what, int status) {
  const kvm_run* run = vcpu_.run_data();
  std::string detail = fmt::format("exit {} ({})", run->exit_reason, exit_name(run->exit_reason));
  if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
    detail += fmt::format(" hardware_entry_failure_reason={:#x}",
                          run->fail_entry.hardware_entry_failure_reason);
  } else if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
    detail += fmt::format(" suberror={}", run->internal.suberror);
    for (uint32_t i = 0; i < run->internal.ndata && i < 4; ++i) {
      detail += fmt::format(" data[{}]={:#x}", i, run->internal.data[i]);
    }
  }
  std::string regs = "registers unavailable";
  auto r = vcpu_.regs();
  auto s = vcpu_.sregs();
  // On AMD SVM, KVM re-initialises the vCPU when it intercepts a shutdown (the VMCB is
  // undefined afterwards): what it returns is the power-on state, not the crash. Say
  // so instead of printing a reset vector as if the guest had died there.
  const bool reset_state = r && s && run->exit_reason == KVM_EXIT_SHUTDOWN && r->rip == 0xfff0 &&
                           s->cs.base == 0xffff0000 && (s->cr0 & 1) == 0 &&
                           (s->efer & (uint64_t{1} << 10)) == 0;  // EFER.LMA clear
  if (reset_state) {
    regs =
        "registers lost: KVM reset the vCPU at the shutdown (AMD SVM does not keep the "
        "state of a triple fault)";
  } else if (r && s) {
    regs = fmt::format(
        "rip={:#x} rsp={:#x} rflags={:#x} cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x} "
        "rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x} cs={:#x}",
        r->rip, r->rsp, r->rflags, s->cr0, s->cr2, s->cr3, s->cr4, s->efer, r->rax, r->rbx, r->rcx,
        r->rdx, r->rsi, r->rdi, r->rbp, s->cs.selector);
  }
  spdlog::error("vcpu {}: {}: {}; {}; stopping the VM with status {}", vcpu_.index(), what, detail,
                regs, status);
  control_.request_shutdown(status, what);
}

}  // namespace labyrinth::vmm
