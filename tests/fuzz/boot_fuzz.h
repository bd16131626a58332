// tests/fuzz/boot_fuzz.h — what the kernel-loader fuzz targets share: a VM's memory and
// the check every rejection (a BootError) must pass.
//
//   static const labyrinth::fuzz::BootVm vm = labyrinth::fuzz::make_boot_vm(64 << 20, 0);
//   if (!kernel) labyrinth::fuzz::check_boot_error(kernel.error());
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "tests/fuzz/fuzz_check.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/layout.h"

namespace labyrinth::fuzz {

struct BootVm {
  vmm::MemoryLayout layout;
  std::unique_ptr<vmm::GuestMemory> memory;
};

// Real GuestMemory laid out as a VM of this much RAM and page-pool window; loader
// rejections are logged, which is not the point here: logging goes off.
inline BootVm make_boot_vm(uint64_t ram_bytes, uint64_t pool_bytes) {
  spdlog::set_level(spdlog::level::off);
  BootVm r;
  auto layout = vmm::MemoryLayout::compute(ram_bytes, pool_bytes);
  FUZZ_CHECK(layout.has_value(), "MemoryLayout::compute");
  r.layout = *layout;
  auto mem = vmm::GuestMemory::create(r.layout.ram);
  FUZZ_CHECK(mem.has_value(), "GuestMemory::create");
  r.memory = std::move(*mem);
  return r;
}

// A rejection names a known configuration key and says what is wrong in one printable line.
inline void check_boot_error(const vmm::BootError& e) {
  static constexpr std::string_view kKeys[] = {"boot-source.kernel_image_path",
                                               "boot-source.initrd_path", "boot-source.boot_args",
                                               "machine-config.mem_size_mib"};
  FUZZ_CHECK(std::ranges::find(kKeys, e.field) != std::end(kKeys), "unknown field '%s'",
             e.field.c_str());
  FUZZ_CHECK(!e.detail.empty(), "empty detail for %s", e.field.c_str());
  const std::string msg = e.message();
  FUZZ_CHECK(std::ranges::all_of(msg, [](char c) { return c >= 0x20 && c != 0x7F; }),
             "error is not one printable line");
}

}  // namespace labyrinth::fuzz
