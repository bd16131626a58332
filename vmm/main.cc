// labyrinth — the command line: `labyrinth run --config FILE [...]`,
// `labyrinth run --api-sock PATH [--config FILE] [...]`, `labyrinth latency ...`.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "vmm/api/api_controller.h"
#include "vmm/api/api_server.h"
#include "vmm/api/launcher.h"
#include "vmm/boot/kernel_kind.h"
#include "vmm/config/config.h"
#include "vmm/error.h"
#include "vmm/kvm/host_probe.h"
#include "vmm/machine.h"
#include "vmm/report/host_kind.h"
#include "vmm/report/lnic_latency.h"
#include "vmm/report/metrics.h"
#include "vmm/report/start_trace.h"

namespace {

constexpr const char* kExitStatusHelp =
    "Exit status of `labyrinth run`:\n"
    "  0..255  the guest's status, written to the exit port 0x501 (value & 0xFF);\n"
    "          0 also for a reset (i8042) or a Linux power-off\n"
    "          the guest runtime uses 0 pass, 1 fail, 2 bad boot info, 3 unhandled exception\n"
    "  2       usage or configuration error (also an unusable kernel image)\n"
    "  3       guest crashed: triple fault / KVM_EXIT_SHUTDOWN (the guest runtime also\n"
    "          exits with 3 after its own unhandled-exception report), or a Linux\n"
    "          kernel panic (its last console lines on stderr)\n"
    "  4       KVM failure: entry failure, internal error, unknown exit\n"
    "  5       host resource error: no /dev/kvm, out of memory, cannot open a file, ...\n"
    "  6       a thread made a system call outside its seccomp allow-list (one line on\n"
    "          stderr names the thread kind and the call; --no-seccomp to debug)\n"
    "  130/143 stopped by SIGINT/SIGTERM (clean shutdown)\n";

bool g_no_seccomp = false;  // --no-seccomp (both subcommands)

std::expected<labyrinth::vmm::Config, int> load(const std::string& config_path,
                                                const std::string& serial_out) {
  auto config =
      labyrinth::vmm::load_config(config_path, labyrinth::vmm::ConfigLimits::host_limits());
  if (!config) {
    (void)std::fprintf(stderr, "labyrinth: config error: %s\n", config.error().message().c_str());
    return std::unexpected(labyrinth::vmm::kExitUsage);
  }
  if (!serial_out.empty()) config->serial.output = serial_out;
  config->seccomp = !g_no_seccomp;
  return *config;
}

int report_build_error(labyrinth::vmm::Error e) {
  const int status = labyrinth::vmm::exit_status_for(e);
  (void)std::fprintf(stderr, "labyrinth: %s: %s\n",
                     status == labyrinth::vmm::kExitUsage ? "config error" : "error",
                     std::string(labyrinth::vmm::to_string(e)).c_str());
  return status;
}

// `labyrinth latency`: run the VM for `seconds`, then print and write the report.
int run_latency(const std::string& config_path, const std::string& serial_out, double seconds,
                double floor_rate, double ready_timeout, const std::string& json_path,
                const std::string& plot_path) {
  using namespace labyrinth;
  if (!plot_path.empty() && std::filesystem::path(plot_path).extension() != ".svg") {
    (void)std::fprintf(stderr, "labyrinth: --plot: only .svg plots are written, got \"%s\"\n",
                       plot_path.c_str());
    return vmm::kExitUsage;
  }
  auto config = load(config_path, serial_out);
  if (!config) return config.error();
  if (config->lnics.empty()) {
    (void)std::fprintf(stderr,
                       "labyrinth: config error: labyrinth.lnics: a latency run needs an lnic\n");
    return vmm::kExitUsage;
  }
  auto machine = vmm::Machine::create(std::move(*config));
  if (!machine) return report_build_error(machine.error());
  vmm::RunOptions opts;
  opts.latency.seconds = seconds;
  opts.latency.floor_rate_hz = floor_rate;
  opts.latency.ready_timeout_s = ready_timeout;
  const int status = (*machine)->run(opts);
  if (!(*machine)->latency_error().empty()) {
    (void)std::fprintf(stderr, "labyrinth: latency: %s\n", (*machine)->latency_error().c_str());
    return status != 0 ? status : vmm::kExitUsage;
  }
  if (status != 0) {
    (void)std::fprintf(stderr,
                       "labyrinth: latency: the VM ended with status %d before the run completed\n",
                       status);
    return status;
  }
  // The run's plain facts for vmm/report/: nothing there reads the machine or the config.
  const auto tsc = [](const vmm::Vcpu::TscOffset& t) {
    return vmm::TscOffsetReading{
        .offset = t.offset, .from_attribute = t.from_attribute, .uncertainty = t.uncertainty};
  };
  const vmm::HostProbe host = vmm::probe_host();
  const vmm::LnicLatencyRun run{
      .nic = (*machine)->lnics().reading(0),
      .host = vmm::describe_host(host.module, host.hypervisor).description,
      .guest = (*machine)->config().kernel_image_path +
               ((*machine)->config().boot_args.empty() ? "" : " " + (*machine)->config().boot_args),
      .seconds = seconds,
      .warmup_s = (*machine)->latency_warmup_s(),
      .tsc_start = tsc((*machine)->tsc_offset()),
      .tsc_end = tsc((*machine)->tsc_offset_end()),
      .halts = (*machine)->latency_halts(),
      .guest_kind = (*machine)->guest_kind() == vmm::KernelKind::linux
                        ? vmm::LatencyGuestKind::linux_kernel
                        : vmm::LatencyGuestKind::freestanding};
  const vmm::LatencyReport r = vmm::lnic_latency_report(run);
  std::cout << r.table() << vmm::lnic_latency_summary(run);
  if (!json_path.empty() &&
      !vmm::write_json(json_path, vmm::lnic_latency_json(r, run, (*machine)->metrics_json()))) {
    (void)std::fprintf(stderr, "labyrinth: cannot write %s\n", json_path.c_str());
    return vmm::kExitHostError;
  }
  if (!plot_path.empty() && !r.write_svg(plot_path)) {
    (void)std::fprintf(stderr, "labyrinth: cannot write %s\n", plot_path.c_str());
    return vmm::kExitHostError;
  }
  return 0;
}

int run_vm(const std::string& config_path, const std::string& serial_out, bool stats,
           const std::string& metrics_path) {
  auto config = load(config_path, serial_out);
  if (!config) return config.error();
  labyrinth::vmm::start_trace().mark("config file read + checked");
  auto machine = labyrinth::vmm::Machine::create(std::move(*config));
  if (!machine) return report_build_error(machine.error());
  const int status = (*machine)->run({.print_stats = stats, .metrics_path = metrics_path});
  (void)std::fputs(labyrinth::vmm::start_trace().table().c_str(), stderr);
  return status;
}

// `labyrinth run --api-sock PATH [--config FILE]`: the API server on its thread
// (vmm/api/); the VM starts from the file at once, or at PUT /actions InstanceStart.
int run_api(const std::string& sock_path, double timeout_s, const std::string& config_path,
            const std::string& serial_out, bool stats, const std::string& metrics_path) {
  using namespace labyrinth::vmm;
  api::ServerLimits limits;
  limits.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  auto server = api::ApiServer::bind(sock_path, limits);
  if (!server) {
    (void)std::fprintf(stderr, "labyrinth: --api-sock: %s\n", server.error().message.c_str());
    return server.error().usage ? kExitUsage : kExitHostError;
  }
  std::unique_ptr<Machine> machine;
  if (!config_path.empty()) {
    auto config = load(config_path, serial_out);
    if (!config) return config.error();
    auto m = Machine::create(std::move(*config));
    if (!m) return report_build_error(m.error());
    machine = std::move(*m);
  }
  api::Launcher launcher((*server)->io(), {.print_stats = stats, .metrics_path = metrics_path},
                         {.serial_out = serial_out, .seccomp = !g_no_seccomp});
  // Read before the API thread's seccomp filter (sysinfo) and passed to it.
  api::ApiController controller(launcher, ConfigLimits::host_limits());
  if (machine) {
    launcher.adopt(std::move(machine));
    controller.mark_running();
  }
  (*server)->start(controller, !g_no_seccomp);
  const int status = launcher.serve();
  (*server)->stop();  // before the controller and the launcher go
  return status;
}

}  // namespace

static int run_main(int argc, char** argv) {
  const double exec_ms = labyrinth::vmm::exec_to_now_ms();  // before anything else
  const auto main_at = labyrinth::vmm::StartTrace::Clock::now();
  CLI::App app{"Labyrinth: a small KVM virtual machine monitor", "labyrinth"};
  app.footer(kExitStatusHelp);
  app.require_subcommand(1);

  std::string config_path, serial_out, log_level = "warn";
  bool stats = false;
  CLI::App* run = app.add_subcommand("run", "Boot a VM from a JSON configuration and run it");
  run->add_option("--config", config_path, "VM configuration (JSON, Firecracker-style keys)");
  std::string api_sock;
  double api_timeout = 10;
  run->add_option("--api-sock", api_sock,
                  "Serve Firecracker's HTTP API on this Unix socket (docs/api.md); without "
                  "--config the VM starts at PUT /actions InstanceStart");
  run->add_option("--api-timeout", api_timeout,
                  "Seconds an API client has to send a whole request or take a response")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  run->add_option("--serial-out", serial_out,
                  "Write the guest's serial output to FILE instead of serial.output");
  run->add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  run->add_flag("--stats", stats, "Print memory and exit statistics on stderr at the end");
  std::string metrics_path;
  run->add_option("--metrics", metrics_path,
                  "Write the page pool's and every lnic's counters as JSON to FILE at the end");
  run->add_flag("--no-seccomp", g_no_seccomp,
                "Do not confine the threads with seccomp filters (debugging only)");
  bool trace_start = false;
  run->add_flag("--trace-start", trace_start,
                "Print on stderr at the end how long each step before the guest's first "
                "instruction took (with --config)");
  run->footer(kExitStatusHelp);

  double seconds = 10, floor_rate = 0, ready_timeout = 0;
  std::string json_path, plot_path;
  CLI::App* lat = app.add_subcommand(
      "latency",
      "Measure an lnic's interrupt path: allocation, host RX path, guest-observed, floor");
  lat->add_option("--config", config_path, "VM configuration with an lnic (pktgen backend)")
      ->required();
  lat->add_option("--seconds", seconds, "Run time: half floor, half device path")
      ->check(CLI::Range(0.2, 3600.0))
      ->capture_default_str();
  lat->add_option("--json", json_path, "Write the report and all counters as JSON to FILE");
  lat->add_option("--plot", plot_path, "Write a percentile plot to FILE (.svg)");
  lat->add_option("--floor-rate", floor_rate,
                  "Interrupts per second in the floor phase (default: the pktgen rate)");
  lat->add_option("--ready-timeout", ready_timeout,
                  "Seconds the guest has to enable the lnic and answer a first interrupt "
                  "(default: 10, a Linux guest 300)")
      ->check(CLI::Range(0.1, 3600.0));
  lat->add_option("--serial-out", serial_out, "Write the guest's serial output to FILE");
  lat->add_option("--log-level", log_level, "trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  lat->add_flag("--no-seccomp", g_no_seccomp,
                "Do not confine the threads with seccomp filters (debugging only)");
  lat->footer(
      "Exit status: 0 report written; 2 usage/config error or the guest never enabled "
      "the NIC; otherwise as for `labyrinth run`.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return labyrinth::vmm::kExitUsage;
  }
  if (trace_start) {
    labyrinth::vmm::start_trace().enable(exec_ms, main_at);
    labyrinth::vmm::start_trace().mark("command line");
  }

  auto logger = spdlog::stderr_color_mt("labyrinth");
  logger->set_pattern("labyrinth: [%l] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  (void)::signal(SIGPIPE, SIG_IGN);  // a closed serial pipe is an EPIPE, not a death
  // The page pool's atomic path promises no page fault (allocator/labyrinth_alloc.h): the
  // pool locks its data; the code it runs (ours, libc's) and the threads' stacks are
  // locked here. MCL_ONFAULT locks pages as they become resident instead of pre-faulting
  // every mapping, guest RAM included, at start-up.
  if (::mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0) {
    spdlog::warn("mlockall failed ({}): the allocator's code may page-fault after eviction",
                 std::strerror(errno));
  }
  labyrinth::vmm::start_trace().mark("logger + mlockall");
  if (lat->parsed()) {
    return run_latency(config_path, serial_out, seconds, floor_rate, ready_timeout, json_path,
                       plot_path);
  }
  if (!api_sock.empty()) {
    return run_api(api_sock, api_timeout, config_path, serial_out, stats, metrics_path);
  }
  if (config_path.empty()) {
    (void)std::fprintf(stderr, "labyrinth: run: --config or --api-sock is required\n");
    return labyrinth::vmm::kExitUsage;
  }
  return run_vm(config_path, serial_out, stats, metrics_path);
}

int main(int argc, char** argv) {
  // stdio decides stdout's buffering on its first use, with isatty() — an ioctl
  // (TCGETS) whenever stdout is a character device other than a pty: /dev/null, a
  // serial console (the test VM's), a VT. The first use is the report, printed by the
  // event loop under its seccomp filter, which forbids that ioctl (`labyrinth latency
  // > /dev/null` exited 6). Decide it here, before any filter; a buffer of our own, so
  // that stdio never allocates (and asks) later.
  static char stdout_buffer[BUFSIZ];
  (void)std::setvbuf(stdout, stdout_buffer, ::isatty(STDOUT_FILENO) != 0 ? _IOLBF : _IOFBF,
                     sizeof stdout_buffer);
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {  // a bug: report it with the documented status
    (void)std::fprintf(stderr, "labyrinth: internal error: %s\n", e.what());
    return labyrinth::vmm::kExitHostError;
  }
}
