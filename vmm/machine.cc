#include "vmm/machine.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "allocator/measure/tsc.h"
#include "devices/legacy/absent_ports.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/exit_device.h"
#include "devices/legacy/fw_cfg.h"
#include "devices/legacy/i8042.h"
#include "devices/pci/pci_ecam.h"
#include "devices/pci/pci_testdev.h"
#include "devices/serial/console_watch.h"
#include "guest/abi/ports.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/bios_handoff.h"
#include "vmm/boot/boot_setup.h"
#include "vmm/boot/cpuid.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/boot/mptable.h"
#include "vmm/boot/multiboot_loader.h"
#include "vmm/report/metrics.h"
#include "vmm/report/start_trace.h"
#include "vmm/report/stats.h"
#include "vmm/sandbox/seccomp.h"

namespace labyrinth::vmm {

namespace {

// The configuration was checked against the same files (config/preflight.cc): a loader rejecting
// them here means a file changed in between.
std::unexpected<Error> rejected(const BootError& e, Error kind) {
  spdlog::error("{}", e.message());
  return std::unexpected(kind);
}

// boot-source.initrd_path's bytes (none without one).
std::expected<FileBytes, Error> read_initrd(const Config& config) {
  if (config.initrd_path.empty()) return FileBytes{};
  return read_file(config.initrd_path);
}

}  // namespace

std::expected<std::unique_ptr<Machine>, Error> Machine::create(Config config) {
  std::unique_ptr<Machine> m(new Machine(std::move(config)));
  if (auto r = m->build(); !r) return std::unexpected(r.error());
  return m;
}

Machine::~Machine() {
  // Threads first (also on a failed build): nothing may run while the rest goes.
  stop_.store(true, std::memory_order_release);
  for (auto& r : runners_) r->kick();
  runners_.clear();
  // No vCPU runs now: the devices, the pool and RAM below deregister without asking KVM
  // to wait (vm.h, "Teardown"); vm_ goes last and its close releases everything.
  if (vm_) vm_->begin_teardown();
}

std::expected<void, Error> Machine::build() {
  auto kvm = Kvm::open();
  if (!kvm) return std::unexpected(kvm.error());
  kvm_.emplace(std::move(*kvm));
  auto vm = Vm::create(*kvm_, config_.pit);
  if (!vm) return std::unexpected(vm.error());
  vm_ = std::move(*vm);
  StartTrace& trace = start_trace();
  trace.mark("KVM: VM, irqchip, PIT");

  auto memory = GuestMemory::create(config_.layout.ram);  // the map parse_config computed
  if (!memory) return std::unexpected(memory.error());
  memory_ = std::move(*memory);
  if (auto r = memory_->register_slots(*vm_); !r) return r;
  trace.mark("guest RAM: mmap + memslots");
  if (auto r = build_pool(); !r) return r;
  trace.mark("page pool + its worker");

  // The bytes pre-flight read and checked (config.h); read here only for a config that
  // skipped pre-flight. Released once loaded: guest memory has them then.
  std::shared_ptr<const FileBytes> image_bytes = std::move(config_.kernel_image);
  if (!image_bytes) {
    auto read = read_file(config_.kernel_image_path);
    if (!read) return std::unexpected(read.error());
    image_bytes = std::make_shared<const FileBytes>(std::move(*read));
    trace.mark("kernel image read");
  }
  auto kind = kernel_kind(*image_bytes, config_.kernel_image_path);
  if (!kind) return rejected(kind.error(), Error::kernel_rejected);
  kind_ = *kind;
  uint64_t entry = 0;
  if (kind_ == KernelKind::linux) {
    auto e = load_linux_guest(*image_bytes);
    if (!e) return std::unexpected(e.error());
    entry = *e;
  } else if (kind_ == KernelKind::multiboot) {
    auto e = load_multiboot_guest(*image_bytes);
    if (!e) return std::unexpected(e.error());
    entry = *e;
  } else {
    auto image = load_elf(*image_bytes, *memory_);
    if (!image) return std::unexpected(image.error());
    entry = image->entry;
  }
  trace.mark("kernel, initrd, boot tables");

  if (auto r = build_devices(); !r) return r;
  trace.mark("devices");
  auto r = build_vcpus(entry);
  trace.mark("vCPUs: CPUID, registers");
  return r;
}

std::expected<uint64_t, Error> Machine::load_linux_guest(std::span<const std::byte> image) {
  auto kernel = parse_linux_kernel(image);
  if (!kernel) return rejected(kernel.error(), Error::linux_rejected);
  auto initrd_bytes = read_initrd(config_);
  if (!initrd_bytes) return std::unexpected(initrd_bytes.error());
  const FileBytes& initrd = *initrd_bytes;
  auto plan = plan_linux_boot(*kernel, config_.layout, initrd.size(), config_.boot_args);
  if (!plan) return rejected(plan.error(), Error::linux_rejected);
  if (auto r =
          load_linux(image, *kernel, *plan, initrd, config_.boot_args, *memory_, config_.layout);
      !r) {
    return std::unexpected(r.error());
  }
  // Both tables: ACPI for the kernel (boot_params.acpi_rsdp_addr points at it), the MP
  // table for one booted with acpi=off.
  if (auto r = memory_->write(kLinuxEbdaGpa, make_mptable(kLinuxEbdaGpa, config_.vcpu_count)); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = memory_->write(kAcpiTablesGpa, make_acpi_tables(kAcpiTablesGpa, config_.vcpu_count));
      !r) {
    return std::unexpected(r.error());
  }
  facs_gpa_ = acpi_facs_gpa(kAcpiTablesGpa);
  return kernel->entry_gpa;
}

std::expected<uint64_t, Error> Machine::load_multiboot_guest(std::span<const std::byte> image) {
  auto kernel = parse_multiboot_kernel(image);
  if (!kernel) return rejected(kernel.error(), Error::kernel_rejected);
  auto module_bytes = read_initrd(config_);
  if (!module_bytes) return std::unexpected(module_bytes.error());
  const FileBytes& module = *module_bytes;
  const std::string cmdline = multiboot_cmdline(config_.kernel_image_path, config_.boot_args);
  auto plan =
      plan_multiboot_boot(*kernel, config_.layout, module.size(), cmdline, config_.initrd_path);
  if (!plan) return rejected(plan.error(), Error::kernel_rejected);
  if (auto r = load_multiboot(image, *kernel, *plan, module, cmdline, config_.initrd_path, *memory_,
                              config_.layout);
      !r) {
    return std::unexpected(r.error());
  }
  multiboot_plan_ = *plan;
  // What SeaBIOS leaves under QEMU (bios_handoff.h): the IVT and its stubs, the PICs
  // initialised, the PIT ticking.
  if (auto r = memory_->write(0, real_mode_ivt()); !r) return std::unexpected(r.error());
  if (auto r = memory_->write(kBiosStubsGpa, bios_irq_stubs()); !r) {
    return std::unexpected(r.error());
  }
  auto pics = vm_->pics();
  if (!pics) return std::unexpected(pics.error());
  if (auto r = vm_->set_pics({bios_pic(pics->first, kPicMasterBase, kPicMasterMask),
                              bios_pic(pics->second, kPicSlaveBase, kPicSlaveMask)});
      !r) {
    return std::unexpected(r.error());
  }
  if (config_.pit) {
    auto pit = vm_->pit();
    if (!pit) return std::unexpected(pit.error());
    if (auto r = vm_->set_pit(bios_pit(*pit)); !r) return std::unexpected(r.error());
  }
  // ... and the ACPI tables QEMU's firmware gives (kvm-unit-tests' s3 and vmexit's PM
  // timer find them by the RSDP scan of 0xE0000-0xFFFFF), with the PM timer named.
  if (auto r = memory_->write(kAcpiTablesGpa,
                              make_acpi_tables(kAcpiTablesGpa, config_.vcpu_count,
                                               {.pm_timer = true, .s3 = true, .facs_32bit = true}));
      !r) {
    return std::unexpected(r.error());
  }
  facs_gpa_ = acpi_facs_gpa(kAcpiTablesGpa);
  return kernel->entry;
}

std::expected<void, Error> Machine::build_pool() {
  pool_sink_ = std::make_unique<VmMemslotSink>(*vm_);
  const PoolSettings& p = config_.pool;
  const alloc::PoolConfig pc = pool_config(config_);  // pool_worker.h: its idle period
  auto pool = alloc::PagePool::create(pc, *pool_sink_);
  if (!pool) {
    spdlog::error("page pool (labyrinth.pool): {}", alloc::to_string(pool.error()));
    return std::unexpected(pool.error() == alloc::Error::bad_config ? Error::pool_bad_config
                                                                    : Error::pool_failed);
  }
  pool_ = std::move(*pool);
  std::function<void()> confine;
  if (config_.seccomp) {  // the worker confines itself before its first pass
    confine = [fd = vm_->fd()] {
      sandbox::Seccomp::install_or_exit(sandbox::ThreadKind::pool_worker, {.vm_fd = fd});
    };
  }
  try {
    pool_worker_ = std::make_unique<PoolWorker>(*pool_, std::move(confine));
  } catch (const std::system_error&) {
    spdlog::error("page pool: cannot start its worker thread");
    return std::unexpected(Error::pool_failed);
  }
  spdlog::debug("page pool: window {:#x}+{:#x}, {} chunk(s) of {} KiB, worker idle period {} us",
                pc.window_gpa, pc.window_size, pc.initial_chunks, p.chunk_size_kib,
                pc.worker_poll.count());
  return {};
}

std::expected<void, Error> Machine::build_devices() {
  // Serial output.
  int out_fd = STDOUT_FILENO;
  if (config_.serial.output != "stdout") {
    serial_file_ =
        Fd(::open(config_.serial.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!serial_file_) {
      spdlog::error("serial output {}: {}", config_.serial.output, std::strerror(errno));
      return std::unexpected(Error::io_failed);
    }
    out_fd = serial_file_.get();
  }
  serial_out_ = std::make_unique<devices::FdOutput>(out_fd);

  auto com1 = Irqfd::create(*vm_, LABYRINTH_COM1_GSI);
  if (!com1) return std::unexpected(com1.error());
  com1_irq_ = std::move(*com1);
  auto irq_test = Irqfd::create(*vm_, LABYRINTH_IRQ_TEST_GSI);
  if (!irq_test) return std::unexpected(irq_test.error());
  irq_test_irq_ = std::move(*irq_test);
  auto kbd = Irqfd::create(*vm_, LABYRINTH_I8042_KBD_GSI);
  if (!kbd) return std::unexpected(kbd.error());
  kbd_irq_ = std::move(*kbd);

  devices::SerialOutput* uart_out = serial_out_.get();
  if (kind_ == KernelKind::linux) {  // a Linux guest's console tells how it ended (console_watch.h)
    console_ = std::make_unique<devices::ConsoleWatch>(*serial_out_, *this);
    uart_out = console_.get();
  }
  uart_ = std::make_shared<devices::Uart16550>(*uart_out, *com1_irq_);
  irq_train_ = std::make_unique<devices::IrqTrain>(io_, *irq_test_irq_);
  // Fixed, non-overlapping ports: insert cannot fail.
  bool ok = pio_.insert(uart_, LABYRINTH_PORT_COM1, 8).has_value();
  i8042_ = std::make_shared<devices::I8042>(*this, kbd_irq_.get());
  ok = ok && pio_.insert(i8042_, devices::I8042::kBase, devices::I8042::kLen).has_value();
  ok =
      ok &&
      pio_.insert(std::make_shared<devices::ExitDevice>(*this), LABYRINTH_PORT_EXIT, 4).has_value();
  cmos_ = std::make_shared<devices::Cmos>();
  ok = ok && pio_.insert(cmos_, devices::Cmos::kBase, devices::Cmos::kLen).has_value();
  // What kvm-unit-tests' kernels expect of QEMU: its exit port and fw_cfg (ports.h).
  ok = ok && pio_.insert(std::make_shared<devices::ExitDevice>(
                             *this, devices::ExitContract::isa_debug_exit),
                         LABYRINTH_PORT_DEBUG_EXIT, 4)
                 .has_value();
  const auto cpus = static_cast<uint16_t>(config_.vcpu_count);
  ok = ok && pio_.insert(std::make_shared<devices::FwCfg>(devices::FwCfg::standard(
                             {.ram_bytes = config_.layout.ram_bytes, .cpus = cpus})),
                         LABYRINTH_PORT_FW_CFG, devices::FwCfg::kLen)
                 .has_value();
  pci_ = std::make_shared<devices::PciBus>();
  ok = ok && pio_.insert(pci_, devices::PciBus::kBase, devices::PciBus::kLen).has_value();
  // The same bus through ECAM (pci_ecam.h), below the BAR window; the ACPI MCFG names it.
  static_assert(kPciEcamGpa >= LABYRINTH_MMIO_GAP_START &&
                kPciEcamGpa + devices::PciEcam::kLen <= LABYRINTH_DEVICE_MMIO_BASE);
  ok = ok &&
       mmio_.insert(std::make_shared<devices::PciEcam>(pci_), kPciEcamGpa, devices::PciEcam::kLen)
           .has_value();
  ok = ok && pio_.insert(std::make_shared<devices::IrqTestDevice>(*irq_train_),
                         LABYRINTH_PORT_IRQ_TEST, 8)
                 .has_value();  // request + ack
  // What a PC has and Labyrinth leaves out, which Linux probes at every boot: all-ones,
  // counted, not warned about (absent_ports.h).
  for (const auto& r : devices::kPcAbsentPorts) {
    ok = ok &&
         pio_.insert(std::make_shared<devices::AbsentPorts>(r.what, pio_absent_), r.base, r.len)
             .has_value();
  }
  if (config_.pc_testdev) {  // kvm-unit-tests' test device, asked for (pc_testdev_host.h)
    testdev_host_ = std::make_unique<PcTestdevHostImpl>(*vm_, *memory_);
    const devices::PcTestdev dev(*testdev_host_);
    using devices::PcTestdev;
    ok = ok && pio_.insert(dev.ports(), PcTestdev::kPortBase, PcTestdev::kPortLen).has_value();
    ok = ok && pio_.insert(dev.irq_lines(), PcTestdev::kIrqBase, PcTestdev::kIrqLen).has_value();
    ok = ok && mmio_.insert(dev.iomem(), PcTestdev::kIomemBase, PcTestdev::kIomemLen).has_value();
  }
  if (facs_gpa_ != 0) {  // the FADT's PM1a blocks and PM timer (acpi.h, acpi_pm.h)
    acpi_pm_ = std::make_shared<devices::AcpiPm>(*this);
    ok = ok && pio_.insert(acpi_pm_, devices::AcpiPm::kBase, devices::AcpiPm::kLen).has_value();
  }
  if (config_.pci_testdev) {  // kvm-unit-tests' PCI test device: its slot and BARs are free
    using devices::PciTestdev;
    const auto dev = std::make_shared<PciTestdev>();
    ok = ok && pci_->insert(PciTestdev::kSlot, dev->function()).has_value();
    ok = ok && mmio_.insert(dev->mem_bar(), PciTestdev::kMemBar, PciTestdev::kMemLen).has_value();
    ok = ok && pio_.insert(dev->io_bar(), PciTestdev::kIoBar, PciTestdev::kIoLen).has_value();
  }
  if (!ok) return std::unexpected(Error::boot_layout);

  if (config_.serial.read_stdin) {
    stdin_ = std::make_unique<devices::StdinReader>(io_, *uart_);
    stdin_->start();
  }
  // lnics: PCI functions (BAR0, MSI-X), doorbells. The guest TSC equals the host TSC
  // plus KVM's offset, read from vCPU 0 once every vCPU exists (build_vcpus).
  msi_router_ = std::make_unique<MsiRouter>(*vm_);
  auto lnics =
      LnicSet::create(config_.lnics, *vm_, *msi_router_, io_, *pool_, *memory_, *pci_, mmio_);
  if (!lnics) return std::unexpected(lnics.error());
  lnics_ = std::move(*lnics);
  auto nets = VirtioNetSet::create(config_.network_interfaces, *vm_, *msi_router_, io_, *memory_,
                                   *pci_, mmio_);
  if (!nets) return std::unexpected(nets.error());
  nets_ = std::move(*nets);

  signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGINT, SIGTERM);
  signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    request_shutdown(sig == SIGINT ? kExitSigint : kExitSigterm, "signal");
  });
  return {};
}

std::expected<void, Error> Machine::build_vcpus(uint64_t entry) {
  const uint32_t n = config_.vcpu_count;
  for (uint32_t i = 0; i < n; ++i) {
    auto vcpu = Vcpu::create(*vm_, i);
    if (!vcpu) return std::unexpected(vcpu.error());
    vcpus_.push_back(std::move(*vcpu));
  }
  // Every vCPU exists now (KVM has synchronised their TSCs): the offset is settled. Only
  // the lnics use it (guest-observed latency, a latency run's drift check), and measuring
  // it is not free: 32 KVM_GET_MSRS and, on a kernel with KVM_VCPU_TSC_OFFSET, the TSC
  // clock's 50 ms calibration spin (measure/tsc.h). A VM without an lnic skips it
  // (issue 19: a microVM's start does no such thing); tsc_offset() then stays zero.
  if (!lnics_->empty()) {
    auto tsc = vcpus_[0]->tsc_offset();
    if (!tsc) return std::unexpected(tsc.error());
    tsc_offset_ = *tsc;
    lnics_->set_tsc_offset(tsc_offset_.offset);
    spdlog::debug("guest TSC offset {} ({}; measured {} +- {} ticks)", tsc_offset_.offset,
                  tsc_offset_.from_attribute ? "KVM_VCPU_TSC_OFFSET" : "measured pair",
                  tsc_offset_.measured, tsc_offset_.uncertainty);
  } else {
    spdlog::debug("guest TSC offset not measured: no lnic uses it");
  }
  // KVM's own counters for vCPU 0 (its halts: how the guest idles, observed by a latency
  // run). Optional: kernels before 5.14 have none, and the report then says so.
  if (auto stats = VcpuStats::open(*vcpus_[0])) vcpu0_stats_.emplace(std::move(*stats));
  // Writes with no effect until the next exit, so KVM may queue them (coalesced_pio.h).
  static constexpr CoalescedPio::Zone kCoalesced[] = {{.port = devices::PciBus::kBase, .len = 4},
                                                      {.port = devices::Cmos::kBase, .len = 1}};
  if (auto c = CoalescedPio::create(*vm_, *vcpus_[0], kCoalesced)) {
    coalesced_ = std::move(*c);
  } else {
    spdlog::debug("no coalesced port writes ({}): every one exits", to_string(c.error()));
  }
  auto khz = vcpus_[0]->tsc_khz();
  BootParams params{n, khz ? *khz : 0, config_.boot_args};
  if (kind_ == KernelKind::labyrinth_elf) {
    if (auto r = write_boot_structures(*memory_, config_.layout, params); !r) return r;
  }

  if (!kvm_) return std::unexpected(Error::kvm_unavailable);  // build() opened it first
  // The CPU template (cpu-config) edits KVM's table once for every vCPU (vmm/boot/cpuid.h).
  auto base = apply_cpu_template(kvm_->supported_cpuid(), config_.cpu_template);
  if (!base) {
    spdlog::error("{}", base.error());
    return std::unexpected(Error::cpu_template_rejected);
  }
  for (auto& vcpu : vcpus_) {
    if (auto r = vcpu->set_cpuid(vcpu_cpuid(*base, vcpu->index(), n)); !r) {
      return r;
    }
    if (kind_ != KernelKind::labyrinth_elf) {
      // Linux and Multiboot kernels start their application processors themselves
      // (INIT/SIPI through the in-kernel LAPIC); they wait in KVM's initial state.
      if (vcpu->index() != 0) continue;
      auto sregs = vcpu->sregs();
      if (!sregs) return std::unexpected(sregs.error());
      const bool linux = kind_ == KernelKind::linux;
      if (auto r = vcpu->set_sregs(linux ? linux_sregs(*sregs)
                                         : multiboot_sregs(*sregs, multiboot_plan_));
          !r) {
        return r;
      }
      auto regs =
          linux ? linux_regs(entry) : multiboot_regs(static_cast<uint32_t>(entry), multiboot_plan_);
      if (auto r = vcpu->set_regs(regs); !r) return r;
      continue;
    }
    auto sregs = vcpu->sregs();
    if (!sregs) return std::unexpected(sregs.error());
    if (auto r = vcpu->set_sregs(long_mode_sregs(*sregs)); !r) return r;
    if (auto r = vcpu->set_regs(entry_regs(entry, vcpu->index())); !r) return r;
    // APs would wait for INIT/SIPI; every Labyrinth vCPU starts at the entry point.
    if (auto r = vcpu->set_mp_state(KVM_MP_STATE_RUNNABLE); !r) return r;
  }
  return {};
}

void Machine::request_shutdown(int status, std::string_view reason) {
  // A Linux kernel that panicked with panic=-1 resets without finishing its report: the
  // reset (status 0) is the end of a crash. Taken before status_mu_ (the watch's lock
  // is a leaf, not held while it calls here).
  if (status == 0 && console_ && console_->panicked()) {
    status = kExitGuestCrashed;
    reason = "guest kernel panic, then a reset";
  }
  {
    std::lock_guard lock(status_mu_);
    if (shutdown_requested_) return;
    shutdown_requested_ = true;
    status_ = status;
    reason_ = std::string(reason);
  }
  spdlog::debug("shutdown requested: {} (status {})", reason, status);
  stop_.store(true, std::memory_order_release);  // pairs with the runners' acquire loads
  {
    std::lock_guard lock(runners_mu_);
    for (auto& r : runners_) r->kick();
  }
  gate_.wake_for_stop();  // parked vCPUs see the stop flag
  io_.stop();
}

void Machine::request_suspend() {
  {
    std::lock_guard lock(status_mu_);
    if (shutdown_requested_ || sleeping_.exchange(true)) return;
  }
  gate_.close();
  {
    std::lock_guard lock(runners_mu_);
    for (auto& r : runners_) r->kick();
  }
  boost::asio::post(io_, [this] { enter_s3(); });
}

void Machine::enter_s3() {
  size_t n = 0;
  {
    std::lock_guard lock(runners_mu_);
    n = runners_.size();
  }
  if (!gate_.wait_parked(n)) return;  // stopping
  if (!paused_) {
    lnics_->pause();
    nets_->pause();
  }
  std::optional<devices::Cmos::Clock::time_point> alarm;
  if (acpi_pm_ && acpi_pm_->rtc_wake_enabled()) alarm = cmos_->next_alarm();
  if (!alarm) {
    spdlog::info("VM suspended (ACPI S3) with no wake event enabled: it sleeps until stopped");
    return;
  }
  const auto in =
      std::chrono::duration_cast<std::chrono::milliseconds>(*alarm - devices::Cmos::Clock::now());
  spdlog::info("VM suspended (ACPI S3); the RTC alarm wakes it in {} ms", in.count());
  if (!wake_timer_) wake_timer_ = std::make_unique<boost::asio::system_timer>(io_);
  wake_timer_->expires_at(*alarm);
  wake_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) wake_from_s3();
  });
}

void Machine::wake_from_s3() {
  uint32_t vector = 0;
  // The FACS's firmware waking vector (offset 12), as the guest left it.
  if (auto v = memory_->translate(facs_gpa_ + 12, 4)) std::memcpy(&vector, v->data(), 4);
  if (vector == 0 || vector >= 0x100000) {
    // Nothing to resume, or not where real mode reaches: firmware would boot afresh.
    request_shutdown(0, "ACPI S3 wake without a real-mode waking vector: a reset");
    return;
  }
  cmos_->alarm_fired();
  acpi_pm_->woke(true);
  {
    std::lock_guard lock(runners_mu_);
    for (size_t i = 0; i < runners_.size(); ++i) {
      if (i == 0) {
        runners_[i]->request_reset([vector](Vcpu& v) -> std::expected<void, Error> {
          auto sregs = v.sregs();
          if (!sregs) return std::unexpected(sregs.error());
          if (auto r = v.set_sregs(s3_resume_sregs(*sregs, vector)); !r) return r;
          if (auto r = v.set_regs(s3_resume_regs(vector)); !r) return r;
          return v.set_mp_state(KVM_MP_STATE_RUNNABLE);
        });
      } else {  // back to waiting for the OS's INIT/SIPI
        runners_[i]->request_reset([](Vcpu& v) -> std::expected<void, Error> {
          return v.set_mp_state(KVM_MP_STATE_INIT_RECEIVED);
        });
      }
    }
  }
  sleeping_.store(false);
  spdlog::info("VM woke from ACPI S3 (RTC alarm): vCPU 0 at the waking vector {:#x}", vector);
  if (!paused_) {
    lnics_->resume();
    nets_->resume();
    gate_.open();
  }
}

bool Machine::set_paused(bool paused) {
  if (paused == paused_) return true;
  if (paused) {
    gate_.close();
    size_t n = 0;
    {
      std::lock_guard lock(runners_mu_);
      for (auto& r : runners_) r->kick();
      n = runners_.size();
    }
    // Waits on this thread (the event loop) for the kicks: a vCPU's exit handler never
    // waits for the event loop, so the wait is as short as the longest exit in flight.
    if (!gate_.wait_parked(n)) return false;
    lnics_->pause();
    nets_->pause();
    spdlog::info("VM paused");
  } else if (sleeping_.load()) {  // in ACPI S3: the wake opens the gate, not this
    spdlog::info("VM resumed (still asleep in ACPI S3)");
  } else {
    lnics_->resume();
    nets_->resume();
    gate_.open();
    spdlog::info("VM resumed");
  }
  paused_ = paused;
  return true;
}

int Machine::run(const RunOptions& options) {
  install_kick_handler();
  for (auto& vcpu : vcpus_) {
    runners_.push_back(std::make_unique<VcpuRunner>(*vcpu, pio_, mmio_, *this, stop_));
    runners_.back()->set_coalesced(coalesced_.get());
    runners_.back()->set_pause_gate(&gate_);
    if (config_.seccomp) {  // each vCPU thread confines itself before its first KVM_RUN
      runners_.back()->set_thread_init([vm = vm_->fd(), fd = vcpu->fd()] {
        sandbox::Seccomp::install_or_exit(sandbox::ThreadKind::vcpu, {.vm_fd = vm, .vcpu_fd = fd});
      });
    }
  }
  // The last setup mark: the first run's line is thread start + its seccomp filter.
  start_trace().mark("vCPU runners");
  bool started = true;
  {
    std::lock_guard lock(runners_mu_);
    for (auto& r : runners_) {
      if (!r->start()) {
        started = false;
        break;
      }
    }
  }
  if (!started) request_shutdown(kExitHostError, "cannot start vCPU threads");
  spdlog::info("VM running: {} vCPU(s), {} MiB, {}", vcpus_.size(), config_.mem_size_mib,
               config_.kernel_image_path);
  boost::asio::post(io_, [this] { nets_->start(); });
  if (options.latency.seconds > 0) {
    start_latency_run(options.latency);
  } else {
    boost::asio::post(io_, [this] { lnics_->start(); });
  }
  // Setup is over: this thread runs the event loop, then teardown and the reports.
  if (config_.seccomp) {
    sandbox::Seccomp::install_or_exit(sandbox::ThreadKind::event_loop,
                                      {.vm_fd = vm_->fd(),
                                       .vcpu_fd = vcpus_[0]->fd(),
                                       .vcpu_stats_fd = vcpu0_stats_ ? vcpu0_stats_->fd() : -1});
  }
  for (;;) {
    try {
      io_.run();
    } catch (const std::exception& e) {  // a handler threw: a bug, stop the VM
      spdlog::error("event loop: {}", e.what());
      request_shutdown(kExitHostError, "event loop failure");
    }
    std::lock_guard lock(status_mu_);
    if (shutdown_requested_) break;
    io_.restart();  // ran out of work without a shutdown: keep serving signals
  }
  for (auto& r : runners_) r->join();
  // A latency run's halts: from the start of its measured phases to the vCPUs' stop.
  if (halts_at_start_ && vcpu0_stats_) {
    if (auto end = vcpu0_stats_->read()) {
      latency_halts_ = HaltObservation{
          .vcpu = 0,
          .seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - measured_from_)
                  .count(),
          .halt_exits = end->halt_exits - halts_at_start_->halt_exits,
          .halt_wait_ns = end->halt_wait_ns - halts_at_start_->halt_wait_ns,
          .has_wait = vcpu0_stats_->has_wait()};
    }
  }
  // The offset again, now the vCPUs are stopped: KVM may have moved it during the run
  // (its TSC catch-up mode does on hosts whose TSC it deems unstable, e.g. under TCG).
  if (!lnics_->empty()) {
    if (auto end = vcpus_[0]->tsc_offset()) tsc_offset_end_ = *end;
  }
  lnics_->stop();  // the event loop has stopped: backends and the pool cache go quietly
  nets_->stop();
  if (options.print_stats) print_stats();
  if (!options.metrics_path.empty() && !write_json(options.metrics_path, metrics_json())) {
    spdlog::error("cannot write metrics to {}", options.metrics_path);
  }
  if (console_ && console_->panicked()) {
    spdlog::error("the guest kernel panicked: {}", console_->panic_line());
    spdlog::error("the guest kernel panicked; its last console lines:");
    for (const std::string& line : console_->last_lines()) spdlog::error("  {}", line);
  }
  std::lock_guard lock(status_mu_);
  spdlog::info("VM stopped: {} (status {})", reason_, status_);
  return status_;
}

void Machine::print_stats() const {
  uint64_t exits = 0;
  for (const auto& r : runners_) exits += r->exits();
  const VmStats stats{.proc = read_proc_memory(),
                      .guest_touched_kib = memory_->resident_bytes() / kKiB,
                      .pool_pinned_kib = pool_->stats().chunks * config_.pool.chunk_size_kib,
                      .vcpu_exits = exits,
                      .serial_bytes = serial_out_->bytes_written(),
                      .pio_unmapped = pio_.unmapped_accesses(),
                      .pio_absent = pio_absent_->load(std::memory_order_relaxed)};
  (void)std::fputs(stats_line(stats).c_str(), stderr);
  if (!nets_->empty()) (void)std::fputs(virtio_net_tables(nets_->readings()).c_str(), stderr);
}

boost::json::object Machine::metrics_json() const {
  return vmm::metrics_json(pool_->stats(), lnics_->readings(), nets_->readings());
}

// A latency run: wait until the guest has enabled lnic 0 and answered a first interrupt
// (the warm-up: a guest may still be starting up after the enable — printing its banner
// over the UART, an exit a byte, took over 2 s in a loaded TCG test VM, and the whole run
// measured nothing), measure the floor (irqfd -> guest handler, no device work) for half
// the time, then the device path (pktgen -> allocation -> completion -> interrupt ->
// guest handler) for the other half, then stop.
void Machine::start_latency_run(const LatencyOptions& opts) {
  latency_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  if (lnics_->empty()) {
    latency_error_ = "the configuration has no lnic (labyrinth.lnics)";
    request_shutdown(kExitUsage, "latency run without an lnic");
    return;
  }
  const auto& nic = lnics_->nics()[0];
  const double ready_timeout_s = opts.ready_timeout_s > 0     ? opts.ready_timeout_s
                                 : kind_ == KernelKind::linux ? LatencyOptions::kReadyTimeoutLinuxS
                                                              : LatencyOptions::kReadyTimeoutS;
  const auto half = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(opts.seconds / 2));
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(ready_timeout_s));
  const double floor_rate = lnic_floor_rate_hz(opts.floor_rate_hz, lnics_->backend_summary(0));
  // Arm the doorbells now (the guest may return pages as soon as it runs), not the backends.
  boost::asio::post(io_, [this] { lnics_->start_doorbells(); });
  // Polls until the guest has enabled the NIC and answered the warm-up probe. A member
  // (not a self-capturing shared_ptr) so that no reference cycle keeps the lnic alive.
  devices::lnic::Lnic* nic_ptr = nic.get();
  latency_wait_ = [this, nic_ptr, half, deadline, floor_rate,
                   enabled_at = std::optional<std::chrono::steady_clock::time_point>(),
                   probe_sent = false]() mutable {
    const auto now = std::chrono::steady_clock::now();
    if (!enabled_at && nic_ptr->running()) enabled_at = now;
    if (enabled_at && !probe_sent) probe_sent = nic_ptr->send_probe();
    if (!probe_sent || !nic_ptr->probe_answered()) {
      if (now > deadline) {
        latency_error_ = lnic_not_ready_message(nic_ptr->config().id, enabled_at.has_value());
        request_shutdown(kExitUsage,
                         enabled_at ? "lnic interrupt never answered" : "lnic never enabled");
        return;
      }
      latency_timer_->expires_after(std::chrono::milliseconds(5));
      latency_timer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) latency_wait_();
      });
      return;
    }
    latency_warmup_s_ = std::chrono::duration<double>(now - *enabled_at).count();
    // What vCPU 0 does while the guest idles is counted from here (the measured phases).
    if (vcpu0_stats_) {
      if (auto start = vcpu0_stats_->read()) {
        halts_at_start_ = *start;
        measured_from_ = std::chrono::steady_clock::now();
      }
    }
    spdlog::info("latency: floor phase ({:.0f} Hz)", floor_rate);
    nic_ptr->start_floor(floor_rate, 50);
    latency_timer_->expires_after(half);
    latency_timer_->async_wait([this, nic_ptr, half](const boost::system::error_code& ec) {
      if (ec) return;
      nic_ptr->stop_floor();
      spdlog::info("latency: device phase");
      lnics_->start_backends();
      latency_timer_->expires_after(half);
      latency_timer_->async_wait([this](const boost::system::error_code& ec2) {
        if (!ec2) request_shutdown(0, "latency run complete");
      });
    });
  };
  boost::asio::post(io_, [this] { latency_wait_(); });
}

}  // namespace labyrinth::vmm
