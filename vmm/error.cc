#include "vmm/error.h"

namespace labyrinth::vmm {

std::string_view to_string(Error e) noexcept {
  switch (e) {
    case Error::kvm_unavailable:
      return "cannot open /dev/kvm";
    case Error::out_of_memory:
      return "out of memory";
    case Error::eventfd_failed:
      return "eventfd creation failed";
    case Error::thread_failed:
      return "thread creation failed";
    case Error::io_failed:
      return "I/O error";
    case Error::pool_failed:
      return "page pool setup failed";
    case Error::net_backend_failed:
      return "a network backend could not be opened";
    case Error::pool_bad_config:
      return "page pool rejected its configuration (labyrinth.pool)";
    case Error::cpu_template_rejected:
      return "the CPU template does not fit this host's KVM (see the line above)";
    case Error::kvm_api_version:
      return "unsupported KVM API version (need 12)";
    case Error::kvm_missing_cap:
      return "a required KVM capability is missing";
    case Error::kvm_ioctl_failed:
      return "KVM ioctl failed";
    case Error::no_free_memslot:
      return "no free KVM memory slot";
    case Error::bad_memslot:
      return "memory slot not in use";
    case Error::interrupted:
      return "KVM_RUN interrupted";
    case Error::gpa_out_of_range:
      return "guest-physical range outside RAM";
    case Error::gpa_overflow:
      return "guest-physical range overflows";
    case Error::elf_malformed:
      return "malformed ELF image";
    case Error::elf_unsupported:
      return "unsupported ELF image (need an ELF64 x86-64 executable)";
    case Error::elf_bad_placement:
      return "ELF segment outside guest RAM or below 1 MiB";
    case Error::boot_layout:
      return "boot structures do not fit low memory";
    case Error::linux_rejected:
      return "the Linux kernel, initramfs or command line cannot boot (see the line above)";
    case Error::kernel_rejected:
      return "the kernel, its module or command line cannot boot (see the line above)";
  }
  return "unknown vmm error";
}

int exit_status_for(Error e) noexcept {
  switch (e) {
    case Error::elf_malformed:
    case Error::elf_unsupported:
    case Error::elf_bad_placement:
    case Error::pool_bad_config:
    case Error::cpu_template_rejected:
    case Error::linux_rejected:
    case Error::kernel_rejected:
      return kExitUsage;
    case Error::kvm_api_version:
    case Error::kvm_missing_cap:
    case Error::kvm_ioctl_failed:
    case Error::no_free_memslot:
    case Error::bad_memslot:
    case Error::interrupted:
      return kExitKvmFailure;
    default:
      return kExitHostError;
  }
}

}  // namespace labyrinth::vmm
