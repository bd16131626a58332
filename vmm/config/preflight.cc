#include "vmm/config/preflight.h"

#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "devices/net/tap.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/boot/linux_loader.h"

namespace labyrinth::vmm {

namespace {

// Whether the kernel (and initramfs) can boot with this configuration (preflight.h).
std::optional<ConfigError> check_boot(const Config& cfg) {
  auto fail = [](std::string field, std::string detail) {
    return ConfigError{std::move(field), std::move(detail)};
  };
  const std::string& path = cfg.kernel_image_path;
  std::string why;
  auto image = read_file(path, &why);
  if (!image) return fail("boot-source.kernel_image_path", why);
  const bool elf = image->size() >= 4 && std::memcmp(image->data(),
                                                     "\x7F"
                                                     "ELF",
                                                     4) == 0;
  // A test guest: the ELF loader checks it in full when the machine loads it.
  if (!is_linux_kernel(*image)) {
    if (!elf) {
      return fail(
          "boot-source.kernel_image_path",
          "\"" + path + "\" is neither an ELF file nor a Linux bzImage (no \"HdrS\" at 0x202)");
    }
    if (!cfg.initrd_path.empty()) {
      return fail("boot-source.initrd_path", "only a Linux kernel takes an initramfs");
    }
    return std::nullopt;
  }
  auto kernel = parse_linux_kernel(*image);
  if (!kernel) return fail(kernel.error().field, kernel.error().detail);
  if (!cfg.lnics.empty()) {
    return fail("labyrinth.lnics", "Linux guests have no lnic driver yet");
  }
  // Only the initramfs' size matters here (where it fits); the machine reads it.
  uint64_t initrd_size = 0;
  if (!cfg.initrd_path.empty()) {
    struct stat st = {};
    if (::stat(cfg.initrd_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return fail("boot-source.initrd_path",
                  "cannot open \"" + cfg.initrd_path + "\" as a regular file");
    }
    initrd_size = static_cast<uint64_t>(st.st_size);
    if (initrd_size > kMaxImageBytes) {
      return fail("boot-source.initrd_path", std::to_string(initrd_size) + " bytes: larger than " +
                                                 std::to_string(kMaxImageBytes >> 20) + " MiB");
    }
  }
  auto plan = plan_linux_boot(*kernel, cfg.layout, initrd_size, cfg.boot_args);
  if (!plan) return fail(plan.error().field, plan.error().detail);
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

std::optional<ConfigError> preflight(const Config& cfg) {
  if (auto e = check_boot(cfg)) return e;
  return check_taps(cfg);
}

}  // namespace labyrinth::vmm
