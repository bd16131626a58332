// The API's VMM side; see launcher.h.
#include "vmm/api/launcher.h"

#include <csignal>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/json/array.hpp>

#include "vmm/api/round_trip.h"
#include "vmm/error.h"
#include "vmm/report/lnic_latency.h"

namespace labyrinth::vmm::api {

namespace asio = boost::asio;

Launcher::Launcher(asio::io_context& api_io, RunOptions options, LaunchSettings settings)
    : api_io_(api_io),
      options_(std::move(options)),
      settings_(std::move(settings)),
      signals_(api_io, SIGINT, SIGTERM) {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec || running_.load(std::memory_order_acquire)) return;  // the Machine's own now
    spdlog::info("received {} before InstanceStart, exiting", sig == SIGINT ? "SIGINT" : "SIGTERM");
    std::lock_guard lock(mu_);
    exit_status_ = sig == SIGINT ? kExitSigint : kExitSigterm;
    cv_.notify_one();
  });
}

Launcher::~Launcher() = default;

void Launcher::adopt(std::unique_ptr<Machine> machine) {
  machine_ = std::move(machine);
}

void Launcher::start(std::string config_json,
                     std::function<void(std::optional<std::string>)> done) {
  std::lock_guard lock(mu_);
  // The controller lets one start be in flight at a time.
  pending_ = StartRequest{std::move(config_json), std::move(done)};
  cv_.notify_one();
}

void Launcher::answer(StartRequest req, std::optional<std::string> failure) {
  // Moved, not copied: a copy left in req would end the API session on this thread once
  // the API thread has answered (round_trip.h).
  asio::post(api_io_,
             [done = std::move(req.done), failure = std::move(failure)] { done(failure); });
}

int Launcher::serve() {
  while (!machine_) {
    StartRequest req;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return pending_ || exit_status_; });
      if (exit_status_) return *exit_status_;
      if (!pending_) continue;  // the wait ends on one or the other: not reached
      req = std::move(*pending_);
      pending_.reset();
    }
    // Exactly a --config file's checks: the section parsers, the memory map, pre-flight.
    auto config = parse_config(req.config_json, ConfigLimits::host_limits());
    if (!config) {
      answer(std::move(req), config.error().message());
      continue;
    }
    if (!settings_.serial_out.empty()) config->serial.output = settings_.serial_out;
    config->seccomp = settings_.seccomp;
    auto machine = Machine::create(std::move(*config));
    if (!machine) {
      answer(std::move(req), std::string(to_string(machine.error())));
      continue;
    }
    machine_ = std::move(*machine);
    answer(std::move(req), std::nullopt);
  }
  {
    std::lock_guard lock(mu_);
    if (exit_status_) return *exit_status_;  // a signal while the VM was being built
  }
  running_.store(true, std::memory_order_release);
  return machine_->run(options_);
}

namespace {

// The counters (metrics_json) and, per lnic, its latency spans so far as `labyrinth
// latency` reports them (alloc, host RX, guest-observed): event loop only.
boost::json::object live_metrics(Machine& m) {
  boost::json::object j = m.metrics_json();
  boost::json::array& lnics = j["lnics"].as_array();
  const TscOffsetReading tsc{.offset = m.tsc_offset().offset,
                             .from_attribute = m.tsc_offset().from_attribute,
                             .uncertainty = m.tsc_offset().uncertainty};
  for (size_t i = 0; i < lnics.size(); ++i) {
    LnicLatencyRun run;
    run.nic = m.lnics().reading(i);
    run.tsc_start = run.tsc_end = tsc;  // the run is not over: the offset read at build
    lnics[i].as_object()["latency"] = lnic_latency_report(run).json();
  }
  return j;
}

}  // namespace

void Launcher::metrics(std::function<void(boost::json::object)> done) {
  // On the VM's event loop, between two of its handlers: the readings are its own, and
  // the data path is only delayed by the copy, never stopped.
  round_trip([this](std::function<void()> f) { machine_->post_to_event_loop(std::move(f)); },
             api_io_, [m = machine_.get()] { return live_metrics(*m); }, std::move(done));
}

void Launcher::set_paused(bool paused, std::function<void(bool)> done) {
  // On the event loop: the vCPUs are parked (or released) and the devices quiesced
  // between two of its handlers; the answer goes back once that is done.
  round_trip([this](std::function<void()> f) { machine_->post_to_event_loop(std::move(f)); },
             api_io_, [m = machine_.get(), paused] { return m->set_paused(paused); },
             std::move(done));
}

}  // namespace labyrinth::vmm::api
