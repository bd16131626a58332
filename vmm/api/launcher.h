// vmm/api/launcher.h — the VMM side of the API (a VmmLink): the main thread waits here
// for InstanceStart, builds the VM from the API's config document exactly as from a
// --config file (parse_config with pre-flight, then Machine::create) and runs it.
//
//   auto server = ApiServer::bind(path, limits).value();
//   Launcher launcher(server->io(), run_options, settings);
//   ApiController controller(launcher, ConfigLimits::host_limits());
//   server->start(controller, seccomp);
//   int status = launcher.serve();   // returns when the VM has stopped (or a signal came first)
//   server->stop();
//
// Threads: start(), metrics(), set_paused() and running_config() are called on the API thread;
// serve() on the main thread. A start request crosses under mu_; the answer goes back by a post to
// the API's io_context. Once the VM runs, metrics are read on its event loop (the device readings
// are the loop's own, vmm/report/metrics.h) and posted back. Before start, SIGINT/SIGTERM end
// serve() with 130/143 (the API's io_context watches them); afterwards the Machine's own signal
// handling does.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "vmm/api/api_controller.h"
#include "vmm/machine.h"

namespace labyrinth::vmm::api {

struct LaunchSettings {
  std::string serial_out;  // --serial-out (empty: the config's)
  bool seccomp = true;     // !--no-seccomp
};

class Launcher final : public VmmLink {
 public:
  Launcher(boost::asio::io_context& api_io, RunOptions options, LaunchSettings settings);
  ~Launcher() override;

  // `--config FILE --api-sock PATH`: the VM is built already; serve() runs it at once.
  void adopt(std::unique_ptr<Machine> machine);
  // Main thread: waits for InstanceStart (answering each failed attempt) or a signal,
  // then runs the VM to its end. Returns the process exit status.
  int serve();

  void start(std::string config_json,
             std::function<void(std::optional<std::string>)> done) override;
  void metrics(std::function<void(boost::json::object)> done) override;
  void set_paused(bool paused, std::function<void(bool)> done) override;
  bool send_ctrl_alt_del() override { return machine_->send_ctrl_alt_del(); }
  const Config& running_config() const override { return machine_->config(); }

 private:
  struct StartRequest {
    std::string config_json;
    std::function<void(std::optional<std::string>)> done;
  };
  void answer(StartRequest req, std::optional<std::string> failure);

  boost::asio::io_context& api_io_;
  RunOptions options_;
  LaunchSettings settings_;
  boost::asio::signal_set signals_;   // pre-start SIGINT/SIGTERM, on the API thread
  std::unique_ptr<Machine> machine_;  // set by the main thread before the API may use it
                                      // (the start answer is posted after it is set)
  std::atomic<bool> running_{false};  // the VM runs: its own signal handling takes over

  std::mutex mu_;  // guards pending_, exit_status_ (leaf lock)
  std::condition_variable cv_;
  std::optional<StartRequest> pending_;
  std::optional<int> exit_status_;
};

}  // namespace labyrinth::vmm::api
