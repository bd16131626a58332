// vmm/boot/elf_loader.h — loads an ELF64 x86-64 test guest into guest RAM.
//
// The image is untrusted input. load_elf() checks the ELF header (magic, class,
// byte order, version, ET_EXEC, EM_X86_64), that the program header table and every
// PT_LOAD segment's file bytes lie inside the file (with overflow checks), that
// p_filesz <= p_memsz, that segments do not overlap, that they lie in RAM at or above
// LABYRINTH_GUEST_LOAD_MIN, and that the entry point is inside a loaded segment.
// Segments are placed at p_paddr (the test guests are identity mapped).
//
//   auto bytes = read_file(path).value();
//   auto image = load_elf(bytes, *memory);     // Error::elf_* on a malformed image
//   regs.rip = image->entry;
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <vector>

#include "vmm/error.h"
#include "vmm/file_bytes.h"
#include "vmm/memory/guest_memory.h"

namespace labyrinth::vmm {

struct LoadedImage {
  uint64_t entry = 0;
  uint64_t low = 0;   // lowest loaded guest-physical address
  uint64_t high = 0;  // one past the highest
};

inline constexpr size_t kMaxProgramHeaders = 64;
inline constexpr size_t kMaxImageBytes = 256 << 20;

// The checks that need no guest memory: header, program header table, PT_LOAD
// segments inside the file and not overlapping, entry inside a segment.
struct ElfImage {
  uint64_t entry = 0;
  std::vector<Elf64_Phdr> loads;  // PT_LOAD segments with p_memsz > 0
};
struct ElfProblem {
  Error error;
  const char* why;  // static text
};
std::expected<ElfImage, ElfProblem> parse_elf(std::span<const std::byte> image);
// Copies one segment parse_elf returned to p_paddr and zeroes its .bss tail.
std::expected<void, Error> copy_segment(std::span<const std::byte> image, const Elf64_Phdr& ph,
                                        const GuestMemory& memory);

std::expected<LoadedImage, Error> load_elf(std::span<const std::byte> image,
                                           const GuestMemory& memory);

// Reads a whole file (at most kMaxImageBytes). Error::io_failed otherwise, logged, or
// (why != nullptr) described in *why instead.
std::expected<FileBytes, Error> read_file(const std::string& path, std::string* why = nullptr);

}  // namespace labyrinth::vmm
