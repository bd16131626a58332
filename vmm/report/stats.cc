#include "vmm/report/stats.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace labyrinth::vmm {

ProcMemory parse_proc_status(std::string_view status) {
  ProcMemory m;
  std::istringstream in{std::string(status)};
  std::string line;
  // Lines read "VmRSS:\t    7980 kB": stoull skips the blanks and stops at the unit.
  auto field = [&](const char* key, uint64_t& out) {
    if (line.rfind(key, 0) == 0) out = std::stoull(line.substr(std::strlen(key)));
  };
  while (std::getline(in, line)) {
    field("VmRSS:", m.rss_kib);
    field("VmHWM:", m.hwm_kib);
    field("RssAnon:", m.anon_kib);
    field("RssFile:", m.file_kib);
  }
  return m;
}

ProcMemory read_proc_memory() {
  // Line by line (plain reads): copying the streambuf whole may ask the file's size
  // with calls the event loop's seccomp filter does not allow; --stats runs under it.
  std::ifstream f("/proc/self/status");
  std::string text, line;
  while (std::getline(f, line)) text += line + '\n';
  return parse_proc_status(text);
}

std::string stats_line(const VmStats& s) {
  const ProcMemory& p = s.proc;
  const uint64_t used = s.guest_touched_kib + s.pool_pinned_kib;
  // vmm_overhead: VmRSS minus guest RAM touched minus pinned pool chunks. Of it,
  // rss_file is mostly shared-library text; vmm_anon_overhead is private memory.
  char line[512];
  (void)std::snprintf(
      line, sizeof line,
      "labyrinth: stats: vm_rss_kib=%llu vm_hwm_kib=%llu rss_anon_kib=%llu "
      "rss_file_kib=%llu guest_touched_kib=%llu pool_pinned_kib=%llu "
      "vmm_overhead_kib=%llu vmm_anon_overhead_kib=%llu vcpu_exits=%llu "
      "serial_bytes=%llu pio_unmapped=%llu pio_absent=%llu\n",
      static_cast<unsigned long long>(p.rss_kib), static_cast<unsigned long long>(p.hwm_kib),
      static_cast<unsigned long long>(p.anon_kib), static_cast<unsigned long long>(p.file_kib),
      static_cast<unsigned long long>(s.guest_touched_kib),
      static_cast<unsigned long long>(s.pool_pinned_kib),
      static_cast<unsigned long long>(p.rss_kib > used ? p.rss_kib - used : 0),
      static_cast<unsigned long long>(p.anon_kib > used ? p.anon_kib - used : 0),
      static_cast<unsigned long long>(s.vcpu_exits),
      static_cast<unsigned long long>(s.serial_bytes),
      static_cast<unsigned long long>(s.pio_unmapped),
      static_cast<unsigned long long>(s.pio_absent));
  return line;
}

std::string virtio_net_tables(std::span<const VirtioNetReading> nets) {
  std::string out;
  for (const VirtioNetReading& n : nets) {
    out += virtio_net_host_rx(n, "virtio-net " + n.id + " (TAP " + n.tap_name + ")").table();
  }
  return out;
}

}  // namespace labyrinth::vmm
