// labyrinth — the command line: `labyrinth run --config FILE [...]`.
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "vmm/config/config.h"
#include "vmm/error.h"
#include "vmm/machine.h"

namespace {

constexpr const char* kExitStatusHelp =
    "Exit status of `labyrinth run`:\n"
    "  0..255  the guest's status, written to the exit port 0x501 (value & 0xFF);\n"
    "          the guest runtime uses 0 pass, 1 fail, 2 bad boot info, 3 unhandled exception\n"
    "  2       usage or configuration error (also an unusable kernel image)\n"
    "  3       guest crashed: triple fault / KVM_EXIT_SHUTDOWN (the guest runtime also\n"
    "          exits with 3 after its own unhandled-exception report)\n"
    "  4       KVM failure: entry failure, internal error, unknown exit\n"
    "  5       host resource error: no /dev/kvm, out of memory, cannot open a file, ...\n"
    "  130/143 stopped by SIGINT/SIGTERM (clean shutdown)\n";

int run_vm(const std::string& config_path, const std::string& serial_out, bool stats) {
  auto config = labyrinth::vmm::load_config(config_path,
                                            labyrinth::vmm::ConfigLimits::host_limits());
  if (!config) {
    std::fprintf(stderr, "labyrinth: config error: %s\n", config.error().message().c_str());
    return labyrinth::vmm::kExitUsage;
  }
  if (!serial_out.empty()) config->serial.output = serial_out;
  auto machine = labyrinth::vmm::Machine::create(*config);
  if (!machine) {
    const int status = labyrinth::vmm::exit_status_for(machine.error());
    std::fprintf(stderr, "labyrinth: %s: %s\n",
                 status == labyrinth::vmm::kExitUsage ? "config error" : "error",
                 std::string(labyrinth::vmm::to_string(machine.error())).c_str());
    return status;
  }
  return (*machine)->run({.print_stats = stats});
}

}  // namespace

int main(int argc, char** argv) {
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
  run->footer(kExitStatusHelp);

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
  ::signal(SIGPIPE, SIG_IGN);  // a closed serial pipe is an EPIPE, not a death
  return run_vm(config_path, serial_out, stats);
}
