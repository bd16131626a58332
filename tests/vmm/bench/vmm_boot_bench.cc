// vmm_boot_bench — how fast `labyrinth run` boots a test guest, and what it costs in memory.
//
//   build/bench/vmm_boot_bench [--runs 20] [--guest build/guest/hello.elf]
//
// For each run: fork+exec build/labyrinth with --stats, stdout and stderr on pipes.
// Measures process start (just before fork) -> first byte of guest serial output,
// and -> process exit (waitpid). Reports median and p90 over the runs, and the
// median of the VMM's own memory figures from its --stats line (VmRSS minus guest
// RAM touched minus pinned pool chunks).
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  double first_byte_ms = -1;
  double exit_ms = -1;
  int status = -1;
  long rss_kib = -1, overhead_kib = -1, anon_overhead_kib = -1, file_kib = -1;
};

long stat_field(const std::string& err, const char* key) {
  const auto pos = err.find(key);
  if (pos == std::string::npos) return -1;
  return std::strtol(err.c_str() + pos + std::strlen(key), nullptr, 10);
}

Sample run_once(const std::string& config) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::exit(5);
  Sample s;
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execl(LABYRINTH_BINARY, LABYRINTH_BINARY, "run", "--config", config.c_str(), "--stats",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  std::string err_text;
  bool out_open = true, err_open = true;
  char buf[4096];
  while (out_open || err_open) {
    pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    if (::poll(p, 2, 10000) <= 0) break;
    if (out_open && (p[0].revents & (POLLIN | POLLHUP))) {
      const ssize_t n = ::read(out[0], buf, sizeof(buf));
      if (n > 0 && s.first_byte_ms < 0) {
        s.first_byte_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      }
      if (n <= 0) out_open = false;
    }
    if (err_open && (p[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t n = ::read(err[0], buf, sizeof(buf));
      if (n > 0) err_text.append(buf, static_cast<size_t>(n));
      if (n <= 0) err_open = false;
    }
  }
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  s.exit_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  s.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  ::close(out[0]);
  ::close(err[0]);
  s.rss_kib = stat_field(err_text, "vm_rss_kib=");
  s.overhead_kib = stat_field(err_text, "vmm_overhead_kib=");
  s.anon_overhead_kib = stat_field(err_text, "vmm_anon_overhead_kib=");
  s.file_kib = stat_field(err_text, "rss_file_kib=");
  return s;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 20;
  std::string guest = std::string(LABYRINTH_GUEST_DIR) + "/hello.elf";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--runs") == 0) runs = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--guest") == 0) guest = argv[i + 1];
  }
  // In TMPDIR when set: the test VM gives every run a private one.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string path = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                     "/labyrinth-bench-XXXXXX.json";
  char* tmpl = path.data();
  const int fd = ::mkstemps(tmpl, 5);
  if (fd < 0) return 5;
  const std::string json = R"({"boot-source": {"kernel_image_path": ")" + guest +
                           R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},)"
                           R"( "serial": {"output": "stdout", "input": "none"}})";
  if (::write(fd, json.data(), json.size()) != static_cast<ssize_t>(json.size())) return 5;
  ::close(fd);

  run_once(tmpl);  // warm-up: page cache, KVM module state
  std::vector<double> first, exit, rss, overhead, anon, file;
  int failures = 0;
  for (int i = 0; i < runs; ++i) {
    const Sample s = run_once(tmpl);
    if (s.status != 0 || s.first_byte_ms < 0) {
      ++failures;
      continue;
    }
    first.push_back(s.first_byte_ms);
    exit.push_back(s.exit_ms);
    rss.push_back(static_cast<double>(s.rss_kib));
    overhead.push_back(static_cast<double>(s.overhead_kib));
    anon.push_back(static_cast<double>(s.anon_overhead_kib));
    file.push_back(static_cast<double>(s.file_kib));
  }
  ::unlink(tmpl);
  if (first.empty()) {
    std::fprintf(stderr, "vmm_boot_bench: every run failed\n");
    return 1;
  }
  std::printf("vmm_boot_bench: %zu runs of %s (%d failed)\n", first.size(), guest.c_str(),
              failures);
  std::printf("  start -> first serial byte: median %.2f ms, p90 %.2f ms\n", percentile(first, 0.5),
              percentile(first, 0.9));
  std::printf("  start -> exit:              median %.2f ms, p90 %.2f ms\n", percentile(exit, 0.5),
              percentile(exit, 0.9));
  std::printf("  VmRSS at exit:              median %.0f KiB\n", percentile(rss, 0.5));
  std::printf("  VMM overhead (VmRSS - guest touched - pool pinned): median %.0f KiB (%.2f MiB)\n",
              percentile(overhead, 0.5), percentile(overhead, 0.5) / 1024.0);
  std::printf("    of which file-backed (shared libraries, binary): median %.0f KiB\n",
              percentile(file, 0.5));
  std::printf("    private anonymous (VmRSS anon - guest - pool):    median %.0f KiB\n",
              percentile(anon, 0.5));
  return failures == 0 ? 0 : 1;
}
