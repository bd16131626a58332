// vmm/error.h — the VMM's one error type, and how errors become exit statuses.
//
// Every fallible vmm/ call returns std::expected<T, vmm::Error>. The site that saw
// errno logs it (spdlog, error level); the value carries the category upwards.
//
//   auto vm = Vm::create(kvm);
//   if (!vm) return exit_status_for(vm.error());   // 4 (KVM) or 5 (host resource)
#pragma once

#include <cstdint>
#include <string_view>

namespace labyrinth::vmm {

enum class Error : uint8_t {
  // Host resources (exit status 5).
  kvm_unavailable = 1,  // open("/dev/kvm") failed
  out_of_memory,        // mmap / allocation of guest or VMM memory failed
  eventfd_failed,
  thread_failed,
  io_failed,           // reading a file (kernel image) failed
  pool_failed,         // the page pool could not pin or map its memory
  net_backend_failed,  // an lnic backend could not open its socket / tap device
  // KVM (exit status 4).
  kvm_api_version,   // KVM_GET_API_VERSION != 12
  kvm_missing_cap,   // a required capability is absent
  kvm_ioctl_failed,  // any other KVM ioctl failed
  no_free_memslot,   // the slot allocator is exhausted
  bad_memslot,       // remove of a slot that is not in use
  interrupted,       // KVM_RUN returned EINTR/EAGAIN (not a failure: a kick)
  // Guest memory translation (a guest address that does not resolve).
  gpa_out_of_range,  // [gpa, gpa + len) not inside one RAM region
  gpa_overflow,      // gpa + len wraps around 2^64
  // Guest image / boot layout (exit status 2: the configured kernel is unusable).
  elf_malformed,          // header, program headers or segments are inconsistent
  elf_unsupported,        // valid ELF but not an x86-64 executable we can boot
  elf_bad_placement,      // a segment is outside RAM or below LABYRINTH_GUEST_LOAD_MIN
  boot_layout,            // boot structures do not fit the VMM-owned low memory
  linux_rejected,         // a Linux kernel, initramfs or command line the boot protocol rejects
  kernel_rejected,        // a Multiboot kernel, its module or command line, or a file of no kind
  pool_bad_config,        // the page pool rejected labyrinth.pool (exit status 2)
  cpu_template_rejected,  // cpu-config names a CPUID leaf this host's KVM lacks (exit status 2)
};

std::string_view to_string(Error e) noexcept;

// The documented exit status for a setup failure of this kind (2, 4 or 5).
int exit_status_for(Error e) noexcept;

// Exit statuses of `labyrinth run` (also in `labyrinth --help` and docs/vmm.md).
inline constexpr int kExitUsage = 2;         // usage or configuration error
inline constexpr int kExitGuestCrashed = 3;  // triple fault / shutdown (guest runtime uses 3 too)
inline constexpr int kExitKvmFailure = 4;    // entry failure, internal error, unknown exit
inline constexpr int kExitHostError = 5;     // no /dev/kvm, out of memory, ...
inline constexpr int kExitSigint = 130;
inline constexpr int kExitSigterm = 143;

}  // namespace labyrinth::vmm
