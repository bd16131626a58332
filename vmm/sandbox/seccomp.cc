// Per-thread seccomp allow-lists; see seccomp.h. The lists were taken from strace -f of
// the test suite, `labyrinth run` (every config in configs/, every lnic backend) and
// `labyrinth latency` (docs/hardening.md).
#include "vmm/sandbox/seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <initializer_list>
#include <mutex>

#include "vmm/kvm/kvm_abi.h"

#ifdef LABYRINTH_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

namespace labyrinth::vmm::sandbox {

namespace {

constexpr int kMaxSyscall = 512;
std::array<const char*, kMaxSyscall> g_names{};  // filled by prepare(), read by the handler
thread_local ThreadKind t_kind = ThreadKind::event_loop;
thread_local bool t_filtered = false;

// Async-signal-safe formatting into a fixed buffer.
struct Line {
  char buf[256];
  size_t n = 0;
  void add(const char* s) {
    while (*s != '\0' && n < sizeof buf - 1) buf[n++] = *s++;
  }
  void add(long v) {
    char tmp[24];
    int i = 0;
    const bool neg = v < 0;
    unsigned long u = neg ? 0ul - static_cast<unsigned long>(v) : static_cast<unsigned long>(v);
    do {
      tmp[i++] = static_cast<char>('0' + u % 10);
      u /= 10;
    } while (u != 0 && i < 22);
    if (neg) tmp[i++] = '-';
    while (i > 0 && n < sizeof buf - 1) buf[n++] = tmp[--i];
  }
};

void on_sigsys(int, siginfo_t* info, void*) {
  Line l;
  l.add("labyrinth: seccomp: ");
  l.add(t_filtered ? to_string(t_kind).data() : "unfiltered");
  l.add(" thread (tid ");
  l.add(static_cast<long>(::syscall(SYS_gettid)));
  l.add(") made a forbidden system call ");
  const int nr = info->si_syscall;
  l.add(nr >= 0 && nr < kMaxSyscall && g_names[nr] != nullptr ? g_names[nr] : "?");
  l.add(" (");
  l.add(static_cast<long>(nr));
  l.add("); exit status ");
  l.add(static_cast<long>(kExitSeccomp));
  l.add("\n");
  (void)!::write(STDERR_FILENO, l.buf, l.n);
  ::_exit(kExitSeccomp);
}

// Conditions on syscall arguments (empty: any arguments).
using Args = std::initializer_list<scmp_arg_cmp>;

// $LABYRINTH_SECCOMP_AUDIT=1: calls off the list are allowed and logged by the kernel
// (SECCOMP_RET_LOG) instead of trapping — how the lists are extended (docs/hardening.md).
uint32_t default_action() {
  const char* audit = std::getenv("LABYRINTH_SECCOMP_AUDIT");
  return audit != nullptr && std::strcmp(audit, "1") == 0 ? SCMP_ACT_LOG : SCMP_ACT_TRAP;
}

struct Builder {
  scmp_filter_ctx ctx = seccomp_init(default_action());
  int err = ctx == nullptr ? -ENOMEM : 0;
  const char* failed = nullptr;
  ~Builder() {
    if (ctx != nullptr) seccomp_release(ctx);
  }
  void allow(int nr, Args args = {}) {
    if (err != 0) return;
    const int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr,
                                         static_cast<unsigned>(args.size()), args.begin());
    if (r != 0) {
      err = r;
      failed = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
    }
  }
  void allow_all(std::initializer_list<int> nrs) {
    for (int nr : nrs) allow(nr);
  }
  void ioctl_on(int fd, std::initializer_list<unsigned long> requests) {
    for (unsigned long req : requests) {
      allow(SCMP_SYS(ioctl), {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(fd)),
                              SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(req))});
    }
  }
};

// Every thread: its own memory (no executable mappings), locks, time, logging through
// write(2), the kick/SIGSYS signal return, abort()'s raise, leaving.
void common(Builder& b) {
  b.allow_all({SCMP_SYS(write),        SCMP_SYS(writev),          SCMP_SYS(futex),
               SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),  SCMP_SYS(exit),
               SCMP_SYS(exit_group),   SCMP_SYS(restart_syscall), SCMP_SYS(clock_gettime),
               SCMP_SYS(gettimeofday), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
               SCMP_SYS(sched_yield),  SCMP_SYS(getpid),          SCMP_SYS(gettid),
               SCMP_SYS(brk),          SCMP_SYS(munmap),          SCMP_SYS(madvise),
               SCMP_SYS(mremap),       SCMP_SYS(getrandom)});
  b.allow(SCMP_SYS(mmap), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  b.allow(SCMP_SYS(mprotect), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
  // abort() raises SIGABRT on itself: a crash should look like a crash, not like a
  // seccomp violation.
  b.allow(SCMP_SYS(tgkill), {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()))});
}

#ifdef LABYRINTH_SANITIZER
// What the ASan/UBSan/TSan/libFuzzer runtimes call on their own (leak check at exit:
// stop-the-world tracer thread; reports: /proc/self/maps, symbolizer pipes).
void sanitizer_runtime(Builder& b) {
  b.allow_all({SCMP_SYS(clone),          SCMP_SYS(clone3),
               SCMP_SYS(ptrace),         SCMP_SYS(wait4),
               SCMP_SYS(prctl),          SCMP_SYS(sched_getaffinity),
               SCMP_SYS(sigaltstack),    SCMP_SYS(rt_sigaction),
               SCMP_SYS(openat),         SCMP_SYS(open),
               SCMP_SYS(read),           SCMP_SYS(pread64),
               SCMP_SYS(close),          SCMP_SYS(getdents64),
               SCMP_SYS(readlink),       SCMP_SYS(readlinkat),
               SCMP_SYS(fstat),          SCMP_SYS(newfstatat),
               SCMP_SYS(stat),           SCMP_SYS(lseek),
               SCMP_SYS(getppid),        SCMP_SYS(kill),
               SCMP_SYS(pipe),           SCMP_SYS(pipe2),
               SCMP_SYS(dup2),           SCMP_SYS(execve),
               SCMP_SYS(fork),           SCMP_SYS(setrlimit),
               SCMP_SYS(getrlimit),      SCMP_SYS(prlimit64),
               SCMP_SYS(sched_getparam), SCMP_SYS(munlock),
               SCMP_SYS(mlock),          SCMP_SYS(process_vm_readv),
               SCMP_SYS(sysinfo),        SCMP_SYS(uname)});
  b.allow(SCMP_SYS(dup3));  // the runtime's dup2 (a symbolizer's pipes) is dup3 on x86-64
  b.allow(SCMP_SYS(tgkill));
  // A report asks isatty() of its output (colours) before it prints. Forbidden, the trap's
  // handler ended the process from inside the report, and TSan's exit then waited for the
  // lock the report held: api_kvm_test hung until its timeout instead of failing.
  b.allow(SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, static_cast<scmp_datum_t>(TCGETS))});
}

// The runtime symbolizes a report through an llvm-symbolizer child it starts at the first
// report. Forked from a filtered thread, the child inherits the filter: its dup3 trapped
// (the handler's exit then hung in the copied runtime, and the report waited on the pipe
// for good), and the loader could not map llvm-symbolizer (PROT_EXEC) anyway. So where a
// symbolizer is configured (scripts/test.sh sets it), prepare() starts it now, unfiltered,
// and it serves every later report over the pipe ("%F %L": a format without them
// symbolizes nothing). Where none is, starting one would only print the runtime's
// warnings at every start; a report is then printed unsymbolized, as it would be anyway.
bool symbolizer_configured() {
  for (const char* var : {"ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && std::strstr(v, "external_symbolizer_path=") != nullptr) return true;
  }
  return std::getenv("ASAN_SYMBOLIZER_PATH") != nullptr;
}
#endif

void vcpu_list(Builder& b, const FilterContext& c) {
  b.ioctl_on(c.vcpu_fd, {KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS});
  // An ACPI S3 wake resets the vCPU on its own thread (VcpuRunner::request_reset): real
  // mode at the waking vector, or back to waiting for INIT/SIPI.
  b.ioctl_on(c.vcpu_fd, {KVM_SET_REGS, KVM_SET_SREGS, KVM_SET_MP_STATE});
  // Posting to the event loop (lnic doorbells without ioeventfd, a shutdown request)
  // wakes its epoll reactor.
  b.allow(SCMP_SYS(epoll_ctl));
  // An MSI the guest programs (lnic ENABLE) is routed from the vCPU thread.
  b.ioctl_on(c.vm_fd, {kvm_abi::kSetGsiRouting, KVM_IRQFD});
  // pc-testdev's interrupt lines (labyrinth.pc_testdev) set GSI levels from the OUT that
  // asks for them; its flush port's mprotect is in common().
  b.ioctl_on(c.vm_fd, {KVM_IRQ_LINE});
}

void event_loop_list(Builder& b, const FilterContext& c) {
  // The event loop: epoll, eventfds/timerfds, stdin, backend sockets, the tap fd.
  b.allow_all({SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
               SCMP_SYS(epoll_ctl), SCMP_SYS(timerfd_settime), SCMP_SYS(recvfrom),
               SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(poll),
               SCMP_SYS(ppoll), SCMP_SYS(fcntl)});
  // Kicking vCPU threads out of KVM_RUN (pthread_kill), joining them.
  b.allow(SCMP_SYS(tgkill));
  // Teardown and reports: memslots and irqfds removed, chunks unpinned, fds closed,
  // signal handlers restored, report files written, /proc/self/status for --stats.
  b.ioctl_on(c.vm_fd,
             {KVM_SET_USER_MEMORY_REGION, KVM_IRQFD, KVM_IOEVENTFD, kvm_abi::kSetGsiRouting});
  // Once the vCPU threads have stopped: vCPU 0's TSC offset read again (Vcpu::tsc_offset:
  // a measured KVM_GET_MSRS pair and the KVM_VCPU_TSC_OFFSET attribute).
  if (c.vcpu_fd >= 0) {
    b.ioctl_on(c.vcpu_fd, {kvm_abi::kGetMsrs, KVM_HAS_DEVICE_ATTR, KVM_GET_DEVICE_ATTR});
  }
  // A latency run reads vCPU 0's halt counters (VcpuStats) when it starts measuring and
  // after the vCPUs stopped; KVM's stats files are read at offsets (they cannot seek).
  if (c.vcpu_stats_fd >= 0) {
    b.allow(SCMP_SYS(pread64), {SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(c.vcpu_stats_fd))});
  }
  b.allow_all({SCMP_SYS(close), SCMP_SYS(munlock), SCMP_SYS(rt_sigaction), SCMP_SYS(openat),
               SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(mincore),
               SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2)});
  // Asio makes descriptors non-blocking with ioctl(FIONBIO) (backend sockets, tap, stdin).
  b.allow(SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, FIONBIO)});
}

void pool_worker_list(Builder& b, const FilterContext& c) {
  // Growing and shrinking: pin a chunk (mmap, madvise, mlock), map it into the guest.
  b.allow_all({SCMP_SYS(mlock), SCMP_SYS(munlock)});
  b.ioctl_on(c.vm_fd, {KVM_SET_USER_MEMORY_REGION});
}

void api_list(Builder& b) {
  // The Asio reactor and the connections: epoll, the listening socket's accepts, reads
  // and writes on the clients' sockets, their timeouts (timerfd), the wake-up eventfd
  // (read) other threads' posts ring, closing a connection.
  b.allow_all({SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(accept4),
               SCMP_SYS(accept), SCMP_SYS(recvmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
               SCMP_SYS(sendto), SCMP_SYS(read), SCMP_SYS(timerfd_settime), SCMP_SYS(shutdown),
               SCMP_SYS(close)});
  // Asio makes an accepted socket non-blocking with ioctl(FIONBIO).
  b.allow(SCMP_SYS(ioctl), {SCMP_A1(SCMP_CMP_EQ, FIONBIO)});
  // PUT /logger and PUT /metrics open an existing file or FIFO; never create one.
  b.allow(SCMP_SYS(openat), {SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT | O_TMPFILE, 0)});
  // Removing its socket as it ends (the main thread, by then under the event loop's
  // filter, cannot).
  b.allow_all({SCMP_SYS(unlink), SCMP_SYS(unlinkat)});
}

}  // namespace

std::string_view to_string(ThreadKind k) noexcept {
  switch (k) {
    case ThreadKind::vcpu:
      return "vcpu";
    case ThreadKind::event_loop:
      return "event_loop";
    case ThreadKind::pool_worker:
      return "pool_worker";
    case ThreadKind::api:
      return "api";
  }
  return "unknown";
}

void Seccomp::prepare() {
  static std::once_flag once;
  std::call_once(once, [] {
    // glibc loads the time zone (openat of /etc/localtime) at the process's first time
    // conversion — gmtime_r included — which may come late, on a filtered thread: the
    // CMOS clock on a vCPU thread (a Linux guest's rtc_cmos). Load it now.
    ::tzset();
    for (int nr = 0; nr < kMaxSyscall; ++nr) {
      const char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
      if (name != nullptr) g_names[nr] = name;  // kept for the process's life
    }
#ifdef LABYRINTH_SANITIZER
    if (symbolizer_configured()) {
      char where[256];
      __sanitizer_symbolize_pc(__builtin_return_address(0), "%F %L", where, sizeof where);
    }
#endif
    struct sigaction sa = {};
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGSYS, &sa, nullptr);
  });
}

std::expected<void, std::string> Seccomp::install(ThreadKind kind, const FilterContext& ctx) {
  prepare();
  Builder b;
  common(b);
#ifdef LABYRINTH_SANITIZER
  sanitizer_runtime(b);
#endif
  switch (kind) {
    case ThreadKind::vcpu:
      vcpu_list(b, ctx);
      break;
    case ThreadKind::event_loop:
      event_loop_list(b, ctx);
      break;
    case ThreadKind::pool_worker:
      pool_worker_list(b, ctx);
      break;
    case ThreadKind::api:
      api_list(b);
      break;
  }
  if (b.err != 0) {
    return std::unexpected(std::string("seccomp: building the ") + std::string(to_string(kind)) +
                           " filter failed at " + (b.failed ? b.failed : "init") + ": " +
                           std::strerror(-b.err));
  }
  // A forced SIGSYS on a thread that blocks it would kill the process silently.
  sigset_t sys;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  pthread_sigmask(SIG_UNBLOCK, &sys, nullptr);
  if (const char* dump = std::getenv("LABYRINTH_SECCOMP_DUMP");
      dump != nullptr && dump == to_string(kind)) {
    (void)seccomp_export_pfc(b.ctx, STDERR_FILENO);  // the filter as readable pseudo code
  }
  if (const int r = seccomp_load(b.ctx); r != 0) {
    return std::unexpected(std::string("seccomp: loading the ") + std::string(to_string(kind)) +
                           " filter failed: " + std::strerror(-r));
  }
  t_kind = kind;
  t_filtered = true;
  if (const char* t = std::getenv("LABYRINTH_TEST_SECCOMP_VIOLATION");
      t != nullptr && to_string(kind) == t) {
    ::syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0);  // on no thread's list
  }
  return {};
}

void Seccomp::install_or_exit(ThreadKind kind, const FilterContext& ctx) {
  if (auto r = install(kind, ctx); !r) {
    (void)std::fprintf(stderr, "labyrinth: %s; exit status 5 (run with --no-seccomp to debug)\n",
                       r.error().c_str());
    std::_Exit(5);  // kExitHostError: this file does not include vmm/error.h
  }
}

}  // namespace labyrinth::vmm::sandbox
