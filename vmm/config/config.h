// vmm/config/config.h — the VM configuration file (JSON, Firecracker-style keys).
//
//   {
//     "boot-source":    {"kernel_image_path": "build/guest/hello.elf", "boot_args": "",
//                        "initrd_path": "..."},   (initrd: Linux kernels only)
//     "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
//     "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
//                             "guest_mac": "06:00:ac:10:00:02"}],   (virtio-net over PCI)
//     "serial":         {"output": "stdout", "input": "stdin"},
//     "labyrinth":      {"pool": {"chunk_size_kib": 2048, "initial_chunks": 1,
//                                 "max_chunks": 16, "backing": "4k",
//                                 "min_pages": 64, "low_pages": 256, "high_pages": 512},
//                        "lnics": [{"id": "lnic0", "guest_mac": "02:4c:42:00:00:01",
//                                   "backend": {"type": "pktgen", "rate_pps": 10000}}],
//                        "pc_testdev": false,   (QEMU's test devices, for kvm-unit-tests)
//                        "pci_testdev": false,
//                        "pit": true},  (false: no in-kernel PIT, QEMU's -machine pit=off)
//     "cpu-config":     "template.json" or {"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0x0",
//                        "flags": 0, "modifiers": [{"register": "ecx",
//                        "bitmap": "0bxxxxxxxxxx0xxxxxxxxxxxxxxxxxxxxx"}]}]}
//   }   (lnic and network-interfaces keys: vmm/config/nic_settings.h)
//
//   auto cfg = load_config("configs/hello.json");
//   if (!cfg) { std::cerr << "labyrinth: config error: " << cfg.error().message(); exit(2); }
//
// Every key is checked: unknown keys, wrong types, out-of-range values and an
// unusable kernel file fail with a ConfigError naming the field
// ("machine-config.vcpu_count: must be 1..32, got 64"). Relative paths are relative
// to the current working directory, as in Firecracker. Enumerations arrive parsed
// (pool.backing, pool.zero_policy) and the guest memory map computed (layout): what
// uses a Config never re-reads or re-derives them.
//
// The files: json_reader.h (field access and messages), parsers.h (one parse_* function
// per section, with its list of allowed keys: parse_vm.cc, parse_nics.cc), preflight.h
// (the only side effects of loading: reading the kernel, opening TAPs), config.cc (the
// order of it all).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "allocator/page_pool.h"
#include "vmm/boot/cpuid.h"
#include "vmm/config/nic_settings.h"
#include "vmm/file_bytes.h"
#include "vmm/memory/layout.h"

namespace labyrinth::vmm {

struct PoolSettings {
  uint32_t chunk_size_kib = 2048;
  uint32_t initial_chunks = 1;
  uint32_t max_chunks = 16;
  alloc::Backing backing = alloc::Backing::small_pages;  // "4k" | "thp" | "hugetlb"
  uint32_t min_pages = 64;
  uint32_t low_pages = 256;
  uint32_t high_pages = 512;
  // Who zeroes freed pages: "on_free" (the freeing thread: for lnics, the device event
  // loop on its return path) or "worker" (the pool's thread). on_free is the default:
  // on a 2-core host the worker is a third busy thread beside a polling vCPU and the
  // event loop, and starves (docs/lnic.md: 0 vs 4,726 failed atomic allocations at 1 Mpps).
  alloc::ZeroPolicy zero_policy = alloc::ZeroPolicy::on_free;  // "on_free" | "worker"
  uint64_t max_bytes() const { return uint64_t{chunk_size_kib} * 1024 * max_chunks; }
};

struct SerialSettings {
  std::string output = "stdout";  // "stdout" or a file path
  bool read_stdin = true;         // "input": "stdin" | "none"
};

struct Config {
  std::string kernel_image_path;
  std::string initrd_path;  // Linux only; empty: none
  std::string boot_args;
  uint32_t vcpu_count = 1;
  uint32_t mem_size_mib = 128;
  SerialSettings serial;
  PoolSettings pool;
  std::vector<LnicSettings> lnics;  // labyrinth.lnics, at most LABYRINTH_MAX_DEVICES
  std::vector<NetworkInterface> network_interfaces;
  // labyrinth.pc_testdev: QEMU's pc-testdev (devices/legacy/pc_testdev.h), which
  // kvm-unit-tests' emulator, ioapic and eventinj use; off by default.
  bool pc_testdev = false;
  // labyrinth.pci_testdev: QEMU's pci-testdev (devices/pci/pci_testdev.h), which
  // kvm-unit-tests' vmexit pci-mem and pci-io time; off by default.
  bool pci_testdev = false;
  // labyrinth.pit: KVM's in-kernel i8254 PIT (KVM_CREATE_PIT2). On by default: Linux
  // calibrates its TSC and checks its timer IRQ against it. Off is QEMU's -machine pit=off,
  // which kvm-unit-tests' vmexit_ipi asks for (a PIT makes KVM inhibit AMD's AVIC).
  bool pit = true;
  // "cpu-config": Firecracker's custom CPU template, cpuid_modifiers only (vmm/boot/cpuid.h);
  // given inline or as the path of a template file, which loading reads (cpu_config_path
  // keeps the name for messages). Empty: KVM's supported CPUID as it is.
  CpuTemplate cpu_template;
  std::string cpu_config_path;
  MemoryLayout layout;  // of mem_size_mib and pool.max_bytes(): computed once, by parse_config
  // The kernel image's bytes as pre-flight read and checked them (preflight.h), so the
  // machine loads what was checked without reading the file again; null where pre-flight
  // did not run (ConfigLimits::check_kernel_file = false). Shared: a Config is copied.
  std::shared_ptr<const FileBytes> kernel_image;
  bool seccomp = true;  // not a JSON key: the CLI's --no-seccomp clears it
};

struct ConfigError {
  std::string field;   // dotted path, e.g. "machine-config.vcpu_count"; empty for the file
  std::string detail;  // what is wrong
  std::string message() const { return field.empty() ? detail : field + ": " + detail; }
};

struct ConfigLimits {
  uint32_t max_mem_mib = 65536;   // and at most the host's RAM (see host_limits())
  uint32_t max_vcpus = 32;        // LABYRINTH_MAX_VCPUS
  bool check_kernel_file = true;  // open the kernel (and initramfs) and check they can boot,
                                  // open (or create) each TAP device once, and read the
                                  // cpu-config template file
  static ConfigLimits host_limits();
};

// Parses and validates JSON text.
std::expected<Config, ConfigError> parse_config(std::string_view json_text,
                                                const ConfigLimits& limits);
// Reads path and parses it.
std::expected<Config, ConfigError> load_config(const std::string& path, const ConfigLimits& limits);

}  // namespace labyrinth::vmm
