// vmm/config/preflight.h — the checks of a parsed Config against the host: the only
// side effects of loading a configuration (internal to vmm/config/).
//
// Parsing proves a file well-formed; pre-flight proves it can run here, so that a bad
// kernel or an unusable TAP is a config error naming its field (exit status 2) rather
// than a failure half-way through building the VM:
//   - the kernel is read once, into cfg.kernel_image, for the machine to load from, and
//     it (and the initramfs) are checked to boot with this configuration,
//     by kind (kernel_kind.h): a Labyrinth test guest (an identity-linked ELF64, checked
//     in full by the loader); a Linux bzImage / vmlinux whose setup header, command line
//     and initramfs fit the kernel's limits and the memory map (linux_loader.h); a
//     Multiboot kernel whose header, segments, command line and module fit
//     (multiboot_loader.h);
//   - each network-interfaces TAP device is opened (or created, and so removed again at
//     once) and closed; the machine opens it again.
// ConfigLimits::check_kernel_file = false skips all of it (the fuzzer, unit tests).
//
//   if (auto e = preflight(cfg)) return std::unexpected(*e);
#pragma once

#include <optional>

#include "vmm/config/config.h"

namespace labyrinth::vmm {

// The first problem found, or nothing (and cfg.kernel_image set). cfg must have parsed
// without error.
std::optional<ConfigError> preflight(Config& cfg);

}  // namespace labyrinth::vmm
