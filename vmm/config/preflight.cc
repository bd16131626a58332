#include "vmm/config/preflight.h"

#include <sys/stat.h>

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "devices/net/tap.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/kernel_kind.h"
#include "vmm/boot/linux_loader.h"
#include "vmm/boot/multiboot_loader.h"

namespace labyrinth::vmm {

namespace {

ConfigError fail(std::string field, std::string detail) {
  return ConfigError{std::move(field), std::move(detail)};
}

// The initramfs' (or Multiboot module's) size: only where it fits matters here, the
// machine reads it.
std::expected<uint64_t, ConfigError> initrd_size(const Config& cfg) {
  if (cfg.initrd_path.empty()) return 0;
  struct stat st = {};
  if (::stat(cfg.initrd_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return std::unexpected(fail("boot-source.initrd_path",
                                "cannot open \"" + cfg.initrd_path + "\" as a regular file"));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > kMaxImageBytes) {
    return std::unexpected(
        fail("boot-source.initrd_path", std::to_string(size) + " bytes: larger than " +
                                            std::to_string(kMaxImageBytes >> 20) + " MiB"));
  }
  return size;
}

// A Linux kernel: setup header, footprint, command line and initramfs (linux_loader.h).
std::optional<ConfigError> check_linux(const Config& cfg, std::span<const std::byte> image) {
  auto kernel = parse_linux_kernel(image);
  if (!kernel) return fail(kernel.error().field, kernel.error().detail);
  auto size = initrd_size(cfg);
  if (!size) return size.error();
  auto plan = plan_linux_boot(*kernel, cfg.layout, *size, cfg.boot_args);
  if (!plan) return fail(plan.error().field, plan.error().detail);
  return std::nullopt;
}

// A Multiboot kernel (multiboot_loader.h): header, ELF32 container, memory map, command
// line and module (boot-source.initrd_path: kvm-unit-tests' environment file).
std::optional<ConfigError> check_multiboot(const Config& cfg, std::span<const std::byte> image) {
  auto kernel = parse_multiboot_kernel(image);
  if (!kernel) return fail(kernel.error().field, kernel.error().detail);
  if (!cfg.lnics.empty()) return fail("labyrinth.lnics", "Multiboot guests have no lnic driver");
  auto size = initrd_size(cfg);
  if (!size) return size.error();
  auto plan =
      plan_multiboot_boot(*kernel, cfg.layout, *size,
                          multiboot_cmdline(cfg.kernel_image_path, cfg.boot_args), cfg.initrd_path);
  if (!plan) return fail(plan.error().field, plan.error().detail);
  return std::nullopt;
}

// Whether the kernel (and initramfs) can boot with this configuration (preflight.h): its
// kind found from the file (kernel_kind.h), then that kind's checks. The bytes checked
// are kept for the machine (config.h, Config::kernel_image).
std::optional<ConfigError> check_boot(Config& cfg) {
  const std::string& path = cfg.kernel_image_path;
  std::string why;
  auto bytes = read_file(path, &why);
  if (!bytes) return fail("boot-source.kernel_image_path", why);
  cfg.kernel_image = std::make_shared<const FileBytes>(std::move(*bytes));
  const FileBytes& image = *cfg.kernel_image;
  auto kind = kernel_kind(image, path);
  if (!kind) return fail(kind.error().field, kind.error().detail);
  switch (*kind) {
    case KernelKind::linux:
      return check_linux(cfg, image);
    case KernelKind::multiboot:
      return check_multiboot(cfg, image);
    case KernelKind::labyrinth_elf:  // the ELF loader checks it in full when the machine loads it
      break;
  }
  if (!cfg.initrd_path.empty()) {
    return fail("boot-source.initrd_path", "only a Linux or Multiboot kernel takes an initramfs");
  }
  return std::nullopt;
}

// Each TAP device can be opened (or created: it goes away again when closed).
std::optional<ConfigError> check_taps(const Config& cfg) {
  for (size_t i = 0; i < cfg.network_interfaces.size(); ++i) {
    auto tap = devices::open_tap(cfg.network_interfaces[i].host_dev_name);
    if (!tap) {
      return ConfigError{"network-interfaces[" + std::to_string(i) + "].host_dev_name",
                         tap.error().detail};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ConfigError> preflight(Config& cfg) {
  if (auto e = check_boot(cfg)) return e;
  return check_taps(cfg);
}

}  // namespace labyrinth::vmm
