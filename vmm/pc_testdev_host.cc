#include "vmm/pc_testdev_host.h"

#include <sys/mman.h>

#include <cstdint>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

void PcTestdevHostImpl::set_irq_level(uint32_t line, bool level) {
  // The device passes lines 0..23 only: GSIs the default routing sends to the IOAPIC
  // (and 0-15 to the PIC), as QEMU's ISA lines are.
  if (line >= devices::PcTestdev::kIrqLen) return;
  if (auto r = vm_.set_irq_line(line, level); !r) {
    spdlog::debug("pc-testdev: GSI {} level {}: {}", line, level ? 1 : 0, to_string(r.error()));
  }
}

void PcTestdevHostImpl::flush_page(uint64_t gpa) {
  // Untrusted: a page of RAM, whole, or nothing (QEMU ignores what it cannot map too).
  if (gpa % kPage != 0) return;
  auto page = memory_.translate(gpa, kPage);
  if (!page) {
    spdlog::debug("pc-testdev: flush of {:#x}: not a page of guest RAM, ignored", gpa);
    return;
  }
  void* host = page->data();
  if (reinterpret_cast<uintptr_t>(host) % kPage != 0) return;  // RAM is mapped page-aligned
  // Two protection changes, each an MMU-notifier invalidation of that page for KVM.
  if (::mprotect(host, kPage, PROT_NONE) != 0 ||
      ::mprotect(host, kPage, PROT_READ | PROT_WRITE) != 0) {
    spdlog::error("pc-testdev: mprotect of guest page {:#x} failed", gpa);
  }
}

}  // namespace labyrinth::vmm
