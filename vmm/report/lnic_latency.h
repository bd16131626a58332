// vmm/report/lnic_latency.h — `labyrinth latency`: the lnic latency run's report.
//
//   LnicLatencyRun run{.nic = lnics.reading(0), .host = ..., .guest = ..., ...};
//   LatencyReport r = lnic_latency_report(run);     // title, notes, the four spans
//   std::cout << r.table() << lnic_latency_summary(run);
//   write_json(path, lnic_latency_json(r, run, machine.metrics_json()));
//
// Everything comes in as plain values read once the VM has stopped: the NIC's reading
// (vmm/report/metrics.h), the guest TSC offset before and after, what KVM counted of
// vCPU 0's halts. The run itself (warm-up, floor phase, device phase) is the machine's
// (vmm/machine.cc); this file only says what it measured and how far to trust it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "vmm/report/latency_report.h"
#include "vmm/report/metrics.h"

namespace labyrinth::vmm {

// What KVM counted for the vCPU that takes the NIC's interrupts over the measured phases
// (vmm/kvm/vcpu_stats.h), for the "guest idle mode" note: observed, not assumed from
// which guest was booted.
struct HaltObservation {
  uint32_t vcpu = 0;
  double seconds = 0;         // the interval the counts cover
  uint64_t halt_exits = 0;    // HLTs executed
  uint64_t halt_wait_ns = 0;  // time blocked after halting
  bool has_wait = false;      // the kernel offers halt_wait_ns
};

// Which guest answered the NIC's interrupts. Both stamp the handler's entry TSC into the
// same ring fields, but at different depths of their interrupt path (docs/lnic.md
// "Measurement"), so their guest and floor spans are not the same measurement.
enum class LatencyGuestKind : uint8_t {
  freestanding,  // a Labyrinth test guest (guest/programs): stamps first thing in its IDT stub
  linux_kernel,  // Linux with lnic.ko: stamps in its MSI-X handler, after the kernel's IRQ entry
};
// "freestanding" or "linux" (the JSON's guest_kind).
std::string_view guest_kind_name(LatencyGuestKind kind);

// guest TSC = host TSC + offset, as the machine read it from vCPU 0.
struct TscOffsetReading {
  int64_t offset = 0;
  bool from_attribute = false;  // KVM_VCPU_TSC_OFFSET (else: a measured guest/host pair)
  uint64_t uncertainty = 0;     // ticks, of the measured pair
};

struct LnicLatencyRun {
  LnicReading nic;
  std::string host;            // describe_host(...).description (vmm/report/host_kind.h)
  std::string guest;           // the kernel image and its boot arguments
  double seconds = 0;          // the run's length, both phases
  double warmup_s = 0;         // guest enabling the NIC -> its answer to a first interrupt
  TscOffsetReading tsc_start;  // read when the vCPUs were built
  TscOffsetReading tsc_end;    // read again once they stopped
  std::optional<HaltObservation> halts;  // std::nullopt: KVM offers no per-vCPU statistics
  LatencyGuestKind guest_kind = LatencyGuestKind::freestanding;
};

// How far the guest's TSC stamps can be trusted over the run.
struct TscVerdict {
  double drift_us = 0;  // how far the offset moved between start and end
  uint64_t early = 0;   // guest stamps that map to before the event they answer
  uint64_t stamps = 0;  // all guest stamps (early ones included)
  bool stable = false;
};
TscVerdict assess_tsc(const LnicLatencyRun& run);

// "lnic ID: 1000 pps pktgen, 64-byte frames" or "lnic ID: loopback backend".
std::string lnic_report_title(const std::string& id, const LnicBackendSummary& backend);
// The floor phase's interrupt rate: `requested` if set, else the generator's rate (so
// the two phases interrupt the guest alike), else 1000 Hz.
double lnic_floor_rate_hz(double requested, const LnicBackendSummary& backend);
// Why a latency run measured nothing: the guest never enabled the NIC, or enabled it and
// never answered its first interrupt.
std::string lnic_not_ready_message(const std::string& id, bool enabled);

LatencyReport lnic_latency_report(const LnicLatencyRun& run);
// One line of counters after the table: frames, drops, violations, floors.
std::string lnic_latency_summary(const LnicLatencyRun& run);
// The report's JSON with `metrics` (vmm/report/metrics.h) and the TSC verdict beside it.
boost::json::object lnic_latency_json(const LatencyReport& report, const LnicLatencyRun& run,
                                      boost::json::object metrics);

// The "guest idle mode" note; std::nullopt: KVM offers no per-vCPU statistics (it says so).
std::string idle_mode_note(const std::optional<HaltObservation>& seen);
// The same observation in one word for the JSON's guest_idle_mode: "halted", "never
// halted" or "not observed".
std::string_view idle_mode_word(const std::optional<HaltObservation>& seen);
// The "guest kind" note: which guest, and where its handler stamps.
std::string guest_kind_note(LatencyGuestKind kind);
// The alloc span's description: what its samples are net of (the empty rdtsc pair,
// `timer_ticks`, calibrated once) and how many of `samples` that made 0.
std::string alloc_span_description(uint64_t timer_ticks, uint64_t net_zero, uint64_t samples);

}  // namespace labyrinth::vmm
