// labyrinth — the command line: `labyrinth run --config FILE [...]`.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <boost/json/serialize.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "allocator/measure/tsc.h"
#include "vmm/config/config.h"
#include "vmm/error.h"
#include "vmm/kvm/host_kind.h"
#include "vmm/machine.h"
#include "vmm/report/latency_report.h"

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
                double floor_rate, const std::string& json_path, const std::string& plot_path) {
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
  auto machine = vmm::Machine::create(*config);
  if (!machine) return report_build_error(machine.error());
  vmm::RunOptions opts;
  opts.latency.seconds = seconds;
  opts.latency.floor_rate_hz = floor_rate;
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
  auto& nic = *(*machine)->lnics().nics()[0];
  const auto& m = nic.metrics();
  const auto& lat = nic.latency();
  const auto& be = config->lnics[0].backend;
  std::string title =
      "lnic " + nic.config().id + ": " +
      (be.type == devices::lnic::BackendType::pktgen
           ? std::to_string(static_cast<long>(be.pktgen.rate_pps)) + " pps pktgen, " +
                 std::to_string(be.pktgen.frame_size) + "-byte frames"
           : std::string(nic.backend().name()) + " backend");
  vmm::LatencyReport r(title);
  r.note("host", vmm::detect_host_kind().description);
  const auto& tsc = (*machine)->tsc_offset();
  r.note("guest TSC offset",
         std::to_string(tsc.offset) + " ticks (" +
             (tsc.from_attribute ? "KVM_VCPU_TSC_OFFSET, matches the measured pair"
                                 : "measured guest/host TSC pair, +-" +
                                       std::to_string(tsc.uncertainty) + " ticks") +
             ")");
  // KVM's TSC catch-up mode (hosts whose TSC it deems unstable, such as QEMU TCG) moves
  // the offset while the guest runs: guest stamps then carry that error.
  const double drift_us = measure::TscClock::instance().to_ns(static_cast<uint64_t>(
                              std::llabs((*machine)->tsc_offset_end().offset - tsc.offset))) /
                          1000.0;
  // Stamps that map to before the event they answer: the offset was off while they
  // were taken, even when it is back where it started by the end (KVM's catch-up moves
  // the guest TSC behind and forward again while the vCPU thread waits for a CPU).
  const uint64_t early = m.guest_stamp_early.get() + m.floor_early.get();
  const uint64_t stamps = early + lat.guest.count() + lat.floor.count();
  // Stable: KVM's attribute agreed with the measured pair at the start, the offset
  // moved by at most 10 us over the run (under QEMU TCG KVM rewrites it at every vCPU
  // load, and the guest and floor spans then carry that error) and at most 1% of the
  // guest's stamps were early.
  const bool tsc_stable = tsc.from_attribute && drift_us <= 10 && early * 100 <= stamps;
  {
    char drift[192];
    (void)std::snprintf(
        drift, sizeof drift, "%.1f us over the run, %lu of %lu guest stamps early%s", drift_us,
        static_cast<unsigned long>(early), static_cast<unsigned long>(stamps),
        tsc_stable ? "" : " (offset unstable: guest and floor spans carry its error)");
    r.note("guest TSC offset drift", drift);
  }
  r.note("guest",
         config->kernel_image_path + (config->boot_args.empty() ? "" : " " + config->boot_args));
  // Observed: KVM's count of the HLTs vCPU 0 executed while the run measured.
  r.note("guest idle mode", vmm::idle_mode_note((*machine)->latency_halts()));
  r.note("duration", std::to_string(seconds) + " s: first half floor, second half device path");
  {
    char warmup[160];
    (void)std::snprintf(warmup, sizeof warmup,
                        "%.0f ms from the guest enabling %s to its answer to a first "
                        "interrupt; measured from then on",
                        (*machine)->latency_warmup_s() * 1000, nic.config().id.c_str());
    r.note("warm-up", warmup);
  }
  r.add("alloc",
        vmm::alloc_span_description(nic.alloc_timer_ticks(), m.alloc_net_zero.get(),
                                    lat.alloc.count()),
        lat.alloc, m.rx_drop_no_page.get());
  r.add("host_rx", "frame ready (scheduled) -> completion posted and MSI irqfd signalled",
        lat.host_rx, m.rx_drops());
  r.add("guest", "frame ready (scheduled) -> guest interrupt handler entry (guest TSC)", lat.guest,
        m.rx_drops());
  r.add("floor", "irqfd signalled at its scheduled time -> guest handler entry, no device work",
        lat.floor, m.floor_missed.get() + m.floor_early.get());
  // A floor is sent only when the guest has answered the previous one: a guest (or a
  // host) slower than the floor rate answers few of them, and the report says so.
  const uint64_t floor_ticks = m.floor_sent.get() + m.floor_missed.get();
  if (m.floor_missed.get() * 2 > floor_ticks) {
    char thin[224];
    (void)std::snprintf(thin, sizeof thin,
                        "%lu of %lu floor ticks sent, %lu skipped because the guest had not "
                        "answered the previous floor: the host is slower than the floor rate",
                        static_cast<unsigned long>(m.floor_sent.get()),
                        static_cast<unsigned long>(floor_ticks),
                        static_cast<unsigned long>(m.floor_missed.get()));
    r.note("floor samples", thin);
  }
  const double floor50 = static_cast<double>(lat.floor.percentile(50));
  const double floor99 = static_cast<double>(lat.floor.percentile(99));
  char buf[160];
  if (floor50 > 0 && lat.guest.count() > 0) {
    (void)std::snprintf(
        buf, sizeof buf, "p50 %.2fx, p99 %.2fx",
        static_cast<double>(lat.guest.percentile(50)) / floor50,
        floor99 > 0 ? static_cast<double>(lat.guest.percentile(99)) / floor99 : 0.0);
    r.note("device path / floor", buf);
  }
  if (lat.host_rx.count() > 0) {
    (void)std::snprintf(buf, sizeof buf, "%.2f%% at p50",
                        100.0 * static_cast<double>(lat.alloc.percentile(50)) /
                            static_cast<double>(std::max<uint64_t>(lat.host_rx.percentile(50), 1)));
    r.note("allocation share of host_rx", buf);
  }
  std::cout << r.table();
  std::cout << "rx_frames " << m.rx_frames.get() << ", drops " << m.rx_drops() << ", violations "
            << m.violations() << ", pages with guest " << nic.pages_with_guest()
            << ", early guest stamps " << m.guest_stamp_early.get() << ", floors sent "
            << m.floor_sent.get() << " (missed " << m.floor_missed.get() << ", early "
            << m.floor_early.get() << ")\n";
  if (!json_path.empty()) {
    auto j = r.json();
    j["metrics"] = (*machine)->metrics_json();
    j["tsc_offset_drift_us"] = drift_us;
    j["tsc_offset_stable"] = tsc_stable;
    if (const auto& h = (*machine)->latency_halts()) {
      j["vcpu0_halt_exits"] = h->halt_exits;
      if (h->has_wait) j["vcpu0_halt_wait_ns"] = h->halt_wait_ns;
    }
    std::ofstream out(json_path);
    out << boost::json::serialize(j) << "\n";
    if (!out) {
      (void)std::fprintf(stderr, "labyrinth: cannot write %s\n", json_path.c_str());
      return vmm::kExitHostError;
    }
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
  auto machine = labyrinth::vmm::Machine::create(*config);
  if (!machine) return report_build_error(machine.error());
  return (*machine)->run({.print_stats = stats, .metrics_path = metrics_path});
}

}  // namespace

static int run_main(int argc, char** argv) {
  CLI::App app{"Labyrinth: a small KVM virtual machine monitor", "labyrinth"};
  app.footer(kExitStatusHelp);
  app.require_subcommand(1);

  std::string config_path, serial_out, log_level = "warn";
  bool stats = false;
  CLI::App* run = app.add_subcommand("run", "Boot a VM from a JSON configuration and run it");
  run->add_option("--config", config_path, "VM configuration (JSON, Firecracker-style keys)")
      ->required();
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
  run->footer(kExitStatusHelp);

  double seconds = 10, floor_rate = 0;
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
  if (lat->parsed()) {
    return run_latency(config_path, serial_out, seconds, floor_rate, json_path, plot_path);
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
