// vmm/report/stats.h — `labyrinth run --stats`: what the VMM cost, on stderr at the end.
//
//   VmStats s{.proc = read_proc_memory(), .guest_touched_kib = ..., ...};
//   std::fputs(stats_line(s).c_str(), stderr);        // "labyrinth: stats: vm_rss_kib=..."
//   std::fputs(virtio_net_tables(nets->readings()).c_str(), stderr);
//
// The line is key=value pairs so that scripts (tests/vmm/bench/vmm_boot_bench.cc) can
// pick fields out of it; their order and names are its interface.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vmm/report/metrics.h"

namespace labyrinth::vmm {

// This process's memory as the kernel accounts it (/proc/self/status), KiB.
struct ProcMemory {
  uint64_t rss_kib = 0;   // VmRSS
  uint64_t hwm_kib = 0;   // VmHWM
  uint64_t anon_kib = 0;  // RssAnon
  uint64_t file_kib = 0;  // RssFile
};
// Fields not found stay 0.
ProcMemory parse_proc_status(std::string_view status);
ProcMemory read_proc_memory();  // reads /proc/self/status

struct VmStats {
  ProcMemory proc;
  uint64_t guest_touched_kib = 0;  // guest RAM resident
  uint64_t pool_pinned_kib = 0;    // the pool's chunks
  uint64_t vcpu_exits = 0;         // all vCPUs
  uint64_t serial_bytes = 0;       // written by the UART
  uint64_t pio_unmapped = 0;       // port accesses no device took
  uint64_t pio_absent = 0;         // accesses to the PC ports left out on purpose (absent_ports.h)
};
std::string stats_line(const VmStats& s);

// The host_rx table of every interface (the lnic's report format); empty without any.
std::string virtio_net_tables(std::span<const VirtioNetReading> nets);

}  // namespace labyrinth::vmm
