// tests/bench/seccomp_bench.cc — what the seccomp filters cost the measured paths.
//
//   build/bench/seccomp_bench [--rounds N] [--batches N]
//
// Issue 9's criterion: the filters must not move the allocation or host_rx p50 by more
// than 5%. The allocation (PagePool::alloc_page) makes no system call, so a filter is
// never run on it (PagePoolAtomicPath.NoSyscalls* checks that). The host_rx span (frame
// ready -> completion written and irqfd signalled, devices/lnic/lnic_datapath.cc) makes
// one: the eventfd write that raises the MSI, on the event-loop thread. This measures
// that call — and the doorbell's eventfd read beside it — on a thread without a filter
// and on one under the real event-loop filter (Seccomp::install, the same list the VMM
// loads), alternating in one process so that the machine's noise falls on both alike.
// A filter is per thread and cannot be removed, so every measurement runs on a fresh
// thread. Each thread times batches of 256 calls and keeps its fastest batch (the
// cost of the call itself; preemption only ever adds); printed are the medians of those
// over the rounds and the filter's cost per call. No KVM.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>

#include "vmm/fd.h"
#include "vmm/sandbox/seccomp.h"

namespace {

using labyrinth::vmm::Fd;
namespace sandbox = labyrinth::vmm::sandbox;

struct Sample {
  double write_ns = 0;  // one eventfd write (the irqfd trigger)
  double read_ns = 0;   // one eventfd read of a non-zero counter (a doorbell)
};

constexpr uint64_t kBatch = 256;  // calls timed together

double per_call_ns(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::nano>(d).count() / static_cast<double>(kBatch);
}

// On a new thread, filtered or not: `batches` batches of kBatch writes and of kBatch
// reads, each timed. A batch's time includes whatever preempted the thread during it,
// so the sample is the fastest batch: what the call itself costs, filter included.
Sample measure(bool filtered, int efd, const sandbox::FilterContext& ctx, uint64_t batches) {
  Sample s{1e18, 1e18};
  std::thread t([&] {
    if (filtered) {
      if (auto r = sandbox::Seccomp::install(sandbox::ThreadKind::event_loop, ctx); !r) {
        std::fprintf(stderr, "seccomp_bench: %s\n", r.error().c_str());
        std::_Exit(5);
      }
    }
    const uint64_t one = 1;
    uint64_t count = 0;
    for (int i = 0; i < 1000; ++i) {  // warm: caches, the filter's first runs
      (void)!::write(efd, &one, sizeof one);
      (void)!::read(efd, &count, sizeof count);
    }
    for (uint64_t b = 0; b < batches; ++b) {
      const auto t0 = std::chrono::steady_clock::now();
      for (uint64_t i = 0; i < kBatch; ++i) (void)!::write(efd, &one, sizeof one);
      const auto t1 = std::chrono::steady_clock::now();
      // Each read finds the counter non-zero: the write before it is not timed.
      std::chrono::steady_clock::duration reads{};
      for (uint64_t i = 0; i < kBatch; ++i) {
        (void)!::write(efd, &one, sizeof one);
        const auto r0 = std::chrono::steady_clock::now();
        (void)!::read(efd, &count, sizeof count);
        reads += std::chrono::steady_clock::now() - r0;
      }
      s.write_ns = std::min(s.write_ns, per_call_ns(t1 - t0));
      s.read_ns = std::min(s.read_ns, per_call_ns(reads));
    }
  });
  t.join();
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

bool parse(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && out > 0;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t rounds = 21, batches = 200;
  for (int i = 1; i < argc; i += 2) {  // options come in pairs: --name value
    const std::string_view a = argv[i];
    uint64_t* target = a == "--rounds" ? &rounds : a == "--batches" ? &batches : nullptr;
    if (target == nullptr || i + 1 >= argc || !parse(argv[i + 1], *target)) {
      std::fprintf(stderr, "usage: seccomp_bench [--rounds N] [--batches N] (N > 0)\n");
      return 2;
    }
  }
  Fd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  // Stand-ins for the VM and vCPU fds: the filter compares ioctl fds by number, so any
  // open descriptors give it the production shape.
  Fd vm(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  Fd vcpu(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!efd || !vm || !vcpu) {
    std::fprintf(stderr, "seccomp_bench: eventfd/open: %s\n", std::strerror(errno));
    return 5;
  }
  sandbox::Seccomp::prepare();
  const sandbox::FilterContext ctx{.vm_fd = vm.get(), .vcpu_fd = vcpu.get()};

  std::vector<double> w[2], r[2];
  for (uint64_t round = 0; round < rounds; ++round) {
    for (int filtered = 0; filtered < 2; ++filtered) {
      // Alternate which mode goes first, so neither always follows the other.
      const bool f = (round % 2 == 0) ? filtered == 1 : filtered == 0;
      const Sample s = measure(f, efd.get(), ctx, batches);
      w[f].push_back(s.write_ns);
      r[f].push_back(s.read_ns);
    }
  }
  const double w0 = median(w[0]), w1 = median(w[1]), r0 = median(r[0]), r1 = median(r[1]);
  std::printf(
      "seccomp_bench: %llu rounds x %llu batches of %llu calls; median over the rounds of the "
      "fastest batch (ns per call)\n",
      static_cast<unsigned long long>(rounds), static_cast<unsigned long long>(batches),
      static_cast<unsigned long long>(kBatch));
  std::printf("%-34s %12s %12s %12s\n", "system call", "no filter", "event_loop", "cost");
  std::printf("%-34s %12.1f %12.1f %+12.1f\n", "eventfd write (irqfd trigger)", w0, w1, w1 - w0);
  std::printf("%-34s %12.1f %12.1f %+12.1f\n", "eventfd read (doorbell)", r0, r1, r1 - r0);
  return 0;
}
