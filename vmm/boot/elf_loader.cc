#include "vmm/boot/elf_loader.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "guest/abi/boot_info.h"
#include "vmm/fd.h"

namespace labyrinth::vmm {

namespace {

std::unexpected<Error> reject(Error e, std::string_view why) {
  spdlog::error("ELF image rejected: {}", why);
  return std::unexpected(e);
}

// Copies a T from image[offset] after checking bounds (no alignment assumptions).
template <class T>
bool read_at(std::span<const std::byte> image, uint64_t offset, T& out) {
  if (offset > image.size() || image.size() - offset < sizeof(T)) return false;
  std::memcpy(&out, image.data() + offset, sizeof(T));
  return true;
}

}  // namespace

std::expected<ElfImage, ElfProblem> parse_elf(std::span<const std::byte> image) {
  auto bad = [](Error e, const char* why) { return std::unexpected(ElfProblem{e, why}); };
  Elf64_Ehdr eh{};
  if (!read_at(image, 0, eh)) return bad(Error::elf_malformed, "shorter than an ELF header");
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return bad(Error::elf_malformed, "no ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return bad(Error::elf_unsupported, "not ELF64");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return bad(Error::elf_unsupported, "not little endian");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
    return bad(Error::elf_unsupported, "unknown ELF version");
  }
  if (eh.e_type != ET_EXEC) return bad(Error::elf_unsupported, "not an executable (ET_EXEC)");
  if (eh.e_machine != EM_X86_64) return bad(Error::elf_unsupported, "machine is not x86-64");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
    return bad(Error::elf_malformed, "bad program header size");
  }
  if (eh.e_phnum == 0 || eh.e_phnum > kMaxProgramHeaders) {
    return bad(Error::elf_malformed, "bad program header count");
  }
  // phoff + phnum * phentsize inside the file (phnum is small: no overflow in the product).
  const uint64_t table_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  uint64_t table_end = 0;
  if (__builtin_add_overflow(eh.e_phoff, table_bytes, &table_end) || table_end > image.size()) {
    return bad(Error::elf_malformed, "program headers outside the file");
  }

  ElfImage out;
  out.entry = eh.e_entry;
  for (uint16_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    read_at(image, eh.e_phoff + i * sizeof(Elf64_Phdr), ph);  // in bounds: checked above
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) return bad(Error::elf_malformed, "p_filesz > p_memsz");
    uint64_t file_end = 0;
    if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &file_end) || file_end > image.size()) {
      return bad(Error::elf_malformed, "segment bytes outside the file");
    }
    uint64_t mem_end = 0;
    if (__builtin_add_overflow(ph.p_paddr, ph.p_memsz, &mem_end)) {
      return bad(Error::elf_bad_placement, "segment address overflows");
    }
    for (const auto& other : out.loads) {
      if (ph.p_paddr < other.p_paddr + other.p_memsz && other.p_paddr < mem_end) {
        return bad(Error::elf_malformed, "segments overlap");
      }
    }
    out.loads.push_back(ph);
  }
  if (out.loads.empty()) return bad(Error::elf_malformed, "no PT_LOAD segment");
  const bool entry_ok = std::any_of(out.loads.begin(), out.loads.end(), [&](const Elf64_Phdr& ph) {
    return eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz;
  });
  if (!entry_ok) return bad(Error::elf_malformed, "entry point outside the loaded segments");
  return out;
}

std::expected<LoadedImage, Error> load_elf(std::span<const std::byte> image,
                                           const GuestMemory& memory) {
  auto elf = parse_elf(image);
  if (!elf) return reject(elf.error().error, elf.error().why);
  for (const auto& ph : elf->loads) {
    if (ph.p_paddr < LABYRINTH_GUEST_LOAD_MIN) {
      return reject(Error::elf_bad_placement, "segment below LABYRINTH_GUEST_LOAD_MIN (1 MiB)");
    }
    if (!memory.translate(ph.p_paddr, ph.p_memsz)) {
      return reject(Error::elf_bad_placement, "segment outside guest RAM");
    }
  }
  LoadedImage out{elf->entry, UINT64_MAX, 0};
  for (const auto& ph : elf->loads) {
    if (auto r = copy_segment(image, ph, memory); !r) return std::unexpected(r.error());
    out.low = std::min<uint64_t>(out.low, ph.p_paddr);
    out.high = std::max<uint64_t>(out.high, ph.p_paddr + ph.p_memsz);
  }
  spdlog::debug("ELF loaded: {:#x}..{:#x}, entry {:#x}", out.low, out.high, out.entry);
  return out;
}

std::expected<void, Error> copy_segment(std::span<const std::byte> image, const Elf64_Phdr& ph,
                                        const GuestMemory& memory) {
  auto dst = memory.translate(ph.p_paddr, ph.p_memsz);
  if (!dst) return std::unexpected(dst.error());
  // parse_elf checked p_offset + p_filesz <= image.size() and p_filesz <= p_memsz.
  std::memcpy(dst->data(), image.data() + ph.p_offset, ph.p_filesz);
  std::memset(dst->data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);  // .bss
  return {};
}

std::expected<FileBytes, Error> read_file(const std::string& path, std::string* why) {
  auto fail = [&](std::string text) {
    if (why != nullptr) {
      *why = std::move(text);
    } else {
      spdlog::error("{}", text);
    }
    return std::unexpected(Error::io_failed);
  };
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st = {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    return fail("cannot open \"" + path + "\": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode) || st.st_size < 0 ||
      static_cast<uint64_t>(st.st_size) > kMaxImageBytes) {
    return fail("\"" + path + "\" is not a regular file of at most " +
                std::to_string(kMaxImageBytes) + " bytes");
  }
  FileBytes buf(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t n = ::read(fd.get(), buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("\"" + path + "\": short read");
    done += static_cast<size_t>(n);
  }
  return buf;
}

}  // namespace labyrinth::vmm
