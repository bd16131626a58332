// tests/fuzz/elf_fuzz.cc — untrusted guest images through load_elf() into real GuestMemory.
//
// RAM is two GuestMemory ranges with a hole between them ([0xFF000, 0x110000) and
// [0x120000, 0x128000)), filled with a canary before each input. Invariants: a rejected
// image writes nothing and fails with an elf_* error; an accepted one has its entry
// point inside [low, high), low >= LABYRINTH_GUEST_LOAD_MIN, and every byte of RAM
// outside the loaded segments still holds the canary (loads stay where the headers say,
// inside RAM); each segment holds its file bytes followed by zeroes.
#include <elf.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>

#include "guest/abi/boot_info.h"
#include "tests/fuzz/fuzz_check.h"
#include "vmm/boot/elf_loader.h"
#include "vmm/memory/guest_memory.h"

namespace {

using labyrinth::vmm::Error;
using labyrinth::vmm::GpaRange;
using labyrinth::vmm::GuestMemory;

constexpr std::byte kCanary{0xA5};
// Small on purpose (the canary is checked after every input): a range straddling
// LOAD_MIN, a hole, and a second range.
constexpr GpaRange kRam[] = {{0xFF000, 0x11000}, {0x120000, 0x8000}};

GuestMemory& memory() {
  static const std::unique_ptr<GuestMemory> mem = [] {
    spdlog::set_level(spdlog::level::off);  // rejections are logged; not the point here
    auto m = GuestMemory::create(kRam);
    FUZZ_CHECK(m.has_value(), "GuestMemory::create failed");
    return std::move(*m);
  }();
  return *mem;
}

std::span<std::byte> range(const GuestMemory& mem, const GpaRange& r) {
  auto s = mem.translate(r.gpa, r.size);
  FUZZ_CHECK(s.has_value(), "RAM range does not translate");
  return *s;
}

bool all_canary(std::span<const std::byte> s) {
  return std::all_of(s.begin(), s.end(), [](std::byte b) { return b == kCanary; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const GuestMemory& mem = memory();
  for (const auto& r : kRam) std::ranges::fill(range(mem, r), kCanary);
  const auto image = std::as_bytes(std::span(data, size));

  auto loaded = labyrinth::vmm::load_elf(image, mem);
  if (!loaded) {
    const Error e = loaded.error();
    FUZZ_CHECK(
        e == Error::elf_malformed || e == Error::elf_unsupported || e == Error::elf_bad_placement,
        "untyped rejection: %d", static_cast<int>(e));
    for (const auto& r : kRam) FUZZ_CHECK(all_canary(range(mem, r)), "a rejected image wrote RAM");
    return 0;
  }
  FUZZ_CHECK(loaded->low >= LABYRINTH_GUEST_LOAD_MIN && loaded->low < loaded->high, "low/high");
  FUZZ_CHECK(loaded->entry >= loaded->low && loaded->entry < loaded->high, "entry outside image");

  // Re-derive the segments from the (accepted, hence well-formed) headers.
  Elf64_Ehdr eh;
  std::memcpy(&eh, data, sizeof eh);
  std::vector<std::vector<std::byte>> expect(std::size(kRam));
  for (size_t i = 0; i < std::size(kRam); ++i) expect[i].assign(kRam[i].size, kCanary);
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, data + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    bool placed = false;
    for (size_t r = 0; r < std::size(kRam); ++r) {
      if (ph.p_paddr < kRam[r].gpa || ph.p_paddr + ph.p_memsz > kRam[r].end()) continue;
      std::byte* dst = expect[r].data() + (ph.p_paddr - kRam[r].gpa);
      std::memcpy(dst, data + ph.p_offset, ph.p_filesz);
      std::memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
      placed = true;
    }
    FUZZ_CHECK(placed, "accepted segment %#llx+%#llx not inside one RAM range",
               static_cast<unsigned long long>(ph.p_paddr),
               static_cast<unsigned long long>(ph.p_memsz));
  }
  for (size_t r = 0; r < std::size(kRam); ++r) {
    const auto got = range(mem, kRam[r]);
    FUZZ_CHECK(std::equal(got.begin(), got.end(), expect[r].begin()),
               "RAM range %zu differs from what the headers describe", r);
  }
  return 0;
}
