// vmm/sandbox/seccomp.h — per-thread seccomp allow-lists (libseccomp).
//
// After setup every Labyrinth thread confines itself to the system calls its job
// needs; anything else traps (SECCOMP_RET_TRAP) into a SIGSYS handler that writes one
// line with write(2) and ends the process with _exit(kExitSeccomp):
//
//   labyrinth: seccomp: vcpu thread (tid 4242) made a forbidden system call socket (41); exit
//   status 6
//
// Thread kinds and where they install their filter:
//   vcpu         VcpuRunner::run(), before the first KVM_RUN (the most restrictive list:
//                ioctl limited to KVM_RUN/GET_REGS/GET_SREGS on its own vCPU fd and
//                KVM_SET_GSI_ROUTING/KVM_IRQFD on the VM fd for an MSI the guest programs,
//                KVM_IRQ_LINE for pc-testdev's interrupt lines)
//   event_loop   the main thread, in Machine::run() once the vCPU threads exist: it runs
//                the device event loop (backends, doorbells, timers, signals) and then
//                tears the VM down and writes the reports, so its list covers both (the
//                issue's "main" thread kind is this one: after setup main runs nothing else)
//   pool_worker  the page pool's worker (vmm/memory/pool_worker.h: the VMM's thread
//                running PagePool::run_worker), before its first pass
//   api          the API server's thread (vmm/api/api_server.h), before it serves: its
//                Asio reactor (epoll, accept4, recvmsg/sendmsg on its sockets, timers,
//                the wake-up eventfd) and opening the existing file PUT /logger or
//                PUT /metrics names (openat without O_CREAT), and unlink of its socket
//                as it ends
//
//   sandbox::Seccomp::prepare();                              // once, before any filter
//   sandbox::Seccomp::install(ThreadKind::vcpu, {.vm_fd = vm, .vcpu_fd = fd}).value();
//
// Under LABYRINTH_SANITIZER (ASan/TSan/libFuzzer builds) every list also admits what the
// sanitizer runtimes call on their own (LeakSanitizer's stop-the-world at exit: clone,
// ptrace, wait4, prctl, sched_getaffinity, ...; TSan's shadow mmaps and report output).
// docs/hardening.md lists each thread's calls and how they were found (strace -f).
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace labyrinth::vmm::sandbox {

enum class ThreadKind : uint8_t { vcpu, event_loop, pool_worker, api };
std::string_view to_string(ThreadKind k) noexcept;

// The process exit status after a forbidden system call (documented in main.cc's help).
inline constexpr int kExitSeccomp = 6;

struct FilterContext {
  int vm_fd = -1;          // ioctls on the VM fd are limited to the ones the thread needs
  int vcpu_fd = -1;        // vcpu: KVM_RUN only on this fd; event_loop: vCPU 0 (its TSC offset)
  int vcpu_stats_fd = -1;  // event_loop: vCPU 0's KVM statistics (pread64 on it only)
};

class Seccomp {
 public:
  // Resolves system call names for the SIGSYS report, installs the handler and loads
  // what libc would otherwise load lazily on a filtered thread (the time zone).
  // Idempotent; call before the first install() (it allocates, the handler does not).
  static void prepare();
  // Loads kind's allow-list on the calling thread (no_new_privs, no TSYNC: other
  // threads keep their own lists) and unblocks SIGSYS for it. Returns a one-line
  // reason on failure. Test hook: if $LABYRINTH_TEST_SECCOMP_VIOLATION names this kind,
  // the thread then makes a forbidden call at once (the tests check the report).
  static std::expected<void, std::string> install(ThreadKind kind, const FilterContext& ctx);
  // install() for threads that cannot return an error (vCPU, pool worker, the event
  // loop once the VM runs): a failure prints one line and ends the process with
  // status 5 (host error) — a thread never runs unconfined when confinement was asked for.
  static void install_or_exit(ThreadKind kind, const FilterContext& ctx);
};

}  // namespace labyrinth::vmm::sandbox
