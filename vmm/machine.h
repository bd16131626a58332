// vmm/machine.h — one running VM: KVM objects, memory, pool, devices, threads.
//
//   auto m = Machine::create(config);          // builds everything, loads the guest
//   if (!m) return exit_status_for(m.error());
//   int status = (*m)->run({.print_stats = false});   // blocks until the VM ends
//
// Threads: one per vCPU (VcpuRunner), the device event loop (io_context, run on the
// caller's thread: signals SIGINT/SIGTERM, stdin, timers, eventfds) and the page
// pool's worker. The first request_shutdown() fixes the exit status, sets the stop
// flag, kicks every vCPU and stops the event loop; run() then joins the vCPU threads
// and the destructor tears down in reverse order of construction (devices, irqfds,
// pool chunks and memslots, RAM, the VM fd).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/system_timer.hpp>
#include <boost/json/object.hpp>

#include "allocator/page_pool.h"
#include "devices/bus/bus.h"
#include "devices/irq_test/irq_test_device.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/i8042.h"
#include "devices/pci/pci_bus.h"
#include "devices/serial/console_watch.h"
#include "devices/serial/serial_console.h"
#include "devices/serial/uart16550.h"
#include "devices/vm_control.h"
#include "vmm/boot/kernel_kind.h"
#include "vmm/boot/multiboot_loader.h"
#include "vmm/config/config.h"
#include "vmm/error.h"
#include "vmm/fd.h"
#include "vmm/kvm/coalesced_pio.h"
#include "vmm/kvm/irqfd.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/msi.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vcpu_stats.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"
#include "vmm/memory/pool_sink.h"
#include "vmm/memory/pool_worker.h"
#include "vmm/net/lnic_set.h"
#include "vmm/net/virtio_net_set.h"
#include "vmm/pc_testdev_host.h"
#include "vmm/report/lnic_latency.h"
#include "vmm/vcpu_runner.h"

namespace labyrinth::vmm {

// `labyrinth latency`: measure lnic 0's interrupt path for a fixed time.
struct LatencyOptions {
  double seconds = 0;        // 0: not a latency run
  double floor_rate_hz = 0;  // the floor phase's interrupt rate (0: the pktgen rate)
  // How long the guest may take to enable the NIC and answer its first interrupt; 0: by
  // the guest's kind (kReadyTimeoutLinuxS for a Linux guest, which boots, loads lnic.ko
  // and brings the interface up first: ~20 s in the TCG test VM; kReadyTimeoutS else).
  double ready_timeout_s = 0;
  static constexpr double kReadyTimeoutS = 10;
  static constexpr double kReadyTimeoutLinuxS = 300;
};

struct RunOptions {
  bool print_stats = false;  // one "labyrinth: stats: ..." line on stderr at the end
  std::string metrics_path;  // write pool, lnic and virtio-net counters as JSON here at the end
  LatencyOptions latency;
};

class Machine final : public devices::VmControl {
 public:
  // Takes the config by value: a caller that moves it in (vmm/main.cc) leaves the
  // pre-flight kernel bytes (Config::kernel_image) to the machine alone, which releases
  // them once the guest is loaded.
  static std::expected<std::unique_ptr<Machine>, Error> create(Config config);
  ~Machine() override;

  // Runs the VM to its end; returns the process exit status.
  int run(const RunOptions& options);
  // After run(): the VM's lnics (counters, latency histograms) and its pool.
  LnicSet& lnics() { return *lnics_; }
  const alloc::PagePool& pool() const { return *pool_; }
  const Config& config() const { return config_; }
  // Which loader booted the guest (found from the image, vmm/boot/kernel_kind.h).
  KernelKind guest_kind() const { return kind_; }
  // guest TSC = host TSC + offset (vCPU 0, read at build time). Measured only for a VM
  // with an lnic (its only user); all zero otherwise.
  const Vcpu::TscOffset& tsc_offset() const { return tsc_offset_; }
  // ... and read again after the run (equal to tsc_offset() unless KVM moved it).
  const Vcpu::TscOffset& tsc_offset_end() const { return tsc_offset_end_; }
  // The pool's, lnics' and virtio-nets' counters (vmm/report/metrics.h). After run(), or
  // while it runs from a handler on the event loop (post_to_event_loop): the device
  // readings are the loop's own.
  boost::json::object metrics_json() const;
  // Runs f on the device event loop (the API's live metrics). Thread-safe; f never runs
  // once the loop has stopped.
  void post_to_event_loop(std::function<void()> f) { boost::asio::post(io_, std::move(f)); }
  // Set by a latency run that could not measure (e.g. the guest never enabled the NIC).
  const std::string& latency_error() const { return latency_error_; }
  // A latency run's warm-up: from the guest enabling lnic 0 to its answer to the first
  // interrupt (the measured phases start then). Negative until then. After run().
  double latency_warmup_s() const { return latency_warmup_s_; }
  // A latency run's halts of vCPU 0 over its measured phases, as KVM counted them;
  // std::nullopt when KVM offers no per-vCPU statistics (or the run never measured).
  // After run().
  const std::optional<HaltObservation>& latency_halts() const { return latency_halts_; }
  void request_shutdown(int status, std::string_view reason) override;
  // ACPI S3 (AcpiPm, on the writing vCPU's thread): the pause gate closes and every vCPU
  // is kicked, so the writer runs no further instruction; on the event loop the devices
  // quiesce and a timer waits for the wake event, the RTC alarm (Cmos::next_alarm, when
  // PM1a_EN's RTC_EN and the RTC's AIE are set; with none the VM sleeps until stopped).
  // At the wake, as a PC's firmware does: vCPU 0 resets into real mode at the FACS
  // firmware waking vector (bios_handoff.h), the others wait for INIT/SIPI, PM1a_STS and
  // RTC status C record the wake, and the gate opens (unless PATCH /vm paused the VM
  // meanwhile: then its resume does). A waking vector of 0 (no OS resume code) is a
  // reset, which ends the VM with 0 like any guest reset. RAM and devices keep their
  // state.
  void request_suspend() override;
  // PATCH /vm, on the event loop (post_to_event_loop): pausing kicks every vCPU out of
  // KVM_RUN and returns once all are parked (vcpu_runner.h, PauseGate), then quiesces the
  // lnics and virtio-nets (nothing reaches the guest; the pool and the counters stay
  // readable); resuming undoes it, devices first. A no-op when already so. False if the
  // VM began stopping meanwhile.
  bool set_paused(bool paused);
  bool paused() const { return paused_; }  // event loop
  // SendCtrlAltDel: the i8042's keyboard presses Ctrl-Alt-Del (devices/legacy/i8042.h),
  // IRQ 1. Any thread. False while the keys of an earlier one wait unread.
  bool send_ctrl_alt_del() { return i8042_->send_ctrl_alt_del(); }

 private:
  explicit Machine(Config&& config) : config_(std::move(config)) {}
  std::expected<void, Error> build();
  std::expected<void, Error> build_pool();
  std::expected<void, Error> build_devices();
  std::expected<void, Error> build_vcpus(uint64_t entry);
  // Loads a Linux kernel (linux_loader.h) and its MP table; returns the entry point.
  std::expected<uint64_t, Error> load_linux_guest(std::span<const std::byte> image);
  // Loads a Multiboot kernel and its module (multiboot_loader.h); returns the entry point.
  std::expected<uint64_t, Error> load_multiboot_guest(std::span<const std::byte> image);
  void print_stats() const;
  void start_latency_run(const LatencyOptions& opts);
  void enter_s3();      // event loop: the vCPUs parked; arm the wake
  void wake_from_s3();  // event loop: the wake event came

  Config config_;
  KernelKind kind_ = KernelKind::labyrinth_elf;  // which loader booted the guest
  MultibootPlan multiboot_plan_;  // where load_multiboot_guest put the boot information
  boost::asio::io_context io_;    // destroyed last: every Asio object below uses it
  std::optional<Kvm> kvm_;
  std::unique_ptr<Vm> vm_;
  std::unique_ptr<GuestMemory> memory_;
  std::unique_ptr<VmMemslotSink> pool_sink_;
  std::unique_ptr<alloc::PagePool> pool_;
  std::unique_ptr<PoolWorker> pool_worker_;  // after the pool: stopped before it goes
  Fd serial_file_;                           // when serial output goes to a file
  std::unique_ptr<devices::FdOutput> serial_out_;
  std::unique_ptr<devices::ConsoleWatch> console_;  // Linux guests: between UART and output
  std::unique_ptr<Irqfd> com1_irq_;
  std::unique_ptr<Irqfd> irq_test_irq_;
  std::unique_ptr<Irqfd> kbd_irq_;  // IRQ 1: the i8042's keyboard
  std::shared_ptr<devices::I8042> i8042_;
  std::shared_ptr<devices::Cmos> cmos_;
  std::shared_ptr<devices::AcpiPm> acpi_pm_;  // Linux and Multiboot guests (their FADT's)
  uint64_t facs_gpa_ = 0;                     // where the FACS is (0: no ACPI tables)
  std::unique_ptr<boost::asio::system_timer> wake_timer_;  // S3: the RTC alarm
  std::shared_ptr<devices::Uart16550> uart_;
  std::unique_ptr<devices::StdinReader> stdin_;
  std::unique_ptr<devices::IrqTrain> irq_train_;
  std::shared_ptr<devices::PciBus> pci_;  // bus 0 behind 0xCF8/0xCFC and ECAM
  std::unique_ptr<MsiRouter> msi_router_;
  std::unique_ptr<LnicSet> lnics_;                   // after the pool: stopped and gone before it
  std::unique_ptr<VirtioNetSet> nets_;               // network-interfaces: virtio-net on pci_
  std::unique_ptr<PcTestdevHostImpl> testdev_host_;  // labyrinth.pc_testdev; before the buses
  std::unique_ptr<boost::asio::steady_timer> latency_timer_;
  std::function<void()> latency_wait_;  // event loop only
  std::string latency_error_;
  double latency_warmup_s_ = -1;
  std::optional<VcpuStats> vcpu0_stats_;                 // KVM's counters for vCPU 0, if offered
  std::optional<VcpuStats::Sample> halts_at_start_;      // read when the measured phases start
  std::chrono::steady_clock::time_point measured_from_;  // ... at this time
  std::optional<HaltObservation> latency_halts_;
  // Accesses to the ports kPcAbsentPorts leaves out (absent_ports.h), for --stats.
  std::shared_ptr<std::atomic<uint64_t>> pio_absent_ = std::make_shared<std::atomic<uint64_t>>(0);
  devices::Bus pio_{"pio"};  // declared after the devices: dropped before them
  devices::Bus mmio_{"mmio"};
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  Vcpu::TscOffset tsc_offset_;
  Vcpu::TscOffset tsc_offset_end_;
  // CONFIG_ADDRESS and the CMOS index, queued by KVM (coalesced_pio.h); its ring lives in
  // vCPU 0's mmap. Null on a KVM without coalesced PIO.
  std::unique_ptr<CoalescedPio> coalesced_;
  std::vector<std::unique_ptr<VcpuRunner>> runners_;  // first to go: joins the threads

  std::mutex runners_mu_;              // held while run() starts the threads, so a kick
                                       // never reads a std::thread being assigned.
                                       // Order: runners_mu_ -> (nothing)
  std::atomic<bool> stop_{false};      // release-stored by the first request_shutdown
  PauseGate gate_{stop_};              // PATCH /vm: where the vCPU threads park
  bool paused_ = false;                // event loop
  std::atomic<bool> sleeping_{false};  // in ACPI S3: from request_suspend to the wake
  std::mutex status_mu_;               // guards status_, reason_ (leaf lock)
  bool shutdown_requested_ = false;
  int status_ = 0;
  std::string reason_;
};

}  // namespace labyrinth::vmm
