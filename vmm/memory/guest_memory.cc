#include "vmm/memory/guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

namespace labyrinth::vmm {

// One anonymous mapping per RAM range (below and above the MMIO gap), not touched: the
// host faults pages in as the guest uses them, so a 4 GiB guest that boots in 40 MiB
// costs 40 MiB.
std::expected<std::unique_ptr<GuestMemory>, Error> GuestMemory::create(
    std::span<const GpaRange> ram) {
  std::unique_ptr<GuestMemory> mem(new GuestMemory());
  for (const auto& r : ram) {
    if (r.size == 0 || r.gpa % kPage != 0 || r.size % kPage != 0 || r.gpa + r.size < r.gpa) {
      return std::unexpected(Error::boot_layout);
    }
    auto host = MmapRegion::anonymous(r.size);
    if (!host) return std::unexpected(host.error());
    mem->ranges_.push_back(r);
    mem->host_.push_back(std::move(*host));
  }
  return mem;
}

GuestMemory::~GuestMemory() {
  if (vm_ == nullptr) return;
  for (uint32_t slot : slots_) {
    if (auto r = vm_->remove_memslot(slot); !r) {
      spdlog::warn("removing RAM memslot {}: {}", slot, to_string(r.error()));
    }
  }
}

std::expected<void, Error> GuestMemory::register_slots(Vm& vm) {
  vm_ = &vm;
  for (size_t i = 0; i < ranges_.size(); ++i) {
    auto slot = vm.add_memslot(ranges_[i].gpa, ranges_[i].size, host_[i].data());
    if (!slot) return std::unexpected(slot.error());
    slots_.push_back(*slot);
  }
  return {};
}

// The one way from a guest address to host memory: every device access to guest RAM
// goes through here, so an address or length a guest wrote cannot reach outside one
// range (the overflow check comes first: gpa + len may wrap).
std::expected<std::span<std::byte>, Error> GuestMemory::translate(uint64_t gpa,
                                                                  uint64_t len) const {
  uint64_t end = 0;
  if (__builtin_add_overflow(gpa, len, &end)) return std::unexpected(Error::gpa_overflow);
  for (size_t i = 0; i < ranges_.size(); ++i) {
    const GpaRange& r = ranges_[i];
    if (gpa >= r.gpa && gpa - r.gpa < r.size) {
      // gpa is inside r; the whole range must be too (no straddling into a gap).
      if (end - r.gpa > r.size) return std::unexpected(Error::gpa_out_of_range);
      return std::span<std::byte>(host_[i].data() + (gpa - r.gpa), len);
    }
  }
  return std::unexpected(Error::gpa_out_of_range);
}

std::expected<void, Error> GuestMemory::write(uint64_t gpa, std::span<const std::byte> data) const {
  auto dst = translate(gpa, data.size());
  if (!dst) return std::unexpected(dst.error());
  if (!data.empty()) std::memcpy(dst->data(), data.data(), data.size());
  return {};
}

std::expected<void, Error> GuestMemory::read(uint64_t gpa, std::span<std::byte> out) const {
  auto src = translate(gpa, out.size());
  if (!src) return std::unexpected(src.error());
  if (!out.empty()) std::memcpy(out.data(), src->data(), out.size());
  return {};
}

// For the report: how much of guest RAM the host really backs, from mincore().
uint64_t GuestMemory::resident_bytes() const {
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  uint64_t total = 0;
  std::vector<unsigned char> vec;
  for (const auto& m : host_) {
    vec.resize((m.size() + page - 1) / page);
    if (::mincore(m.data(), m.size(), vec.data()) != 0) continue;
    for (unsigned char v : vec) total += (v & 1) ? page : 0;
  }
  return total;
}

}  // namespace labyrinth::vmm
