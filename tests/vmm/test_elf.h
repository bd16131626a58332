// tests/vmm/test_elf.h — tiny hand-assembled ELF64 guests for loader and VMM tests.
//
//   TestElf elf = TestElf::with_code(guests::kExit7);   // one PT_LOAD at 1 MiB
//   elf.ph[0].p_filesz = 1 << 30;                        // corrupt it as needed
//   std::vector<std::byte> bytes = elf.bytes();
#pragma once

#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace labyrinth::testing {

namespace guests {
// out "hi\n" to COM1, then a 32-bit OUT of 7 to the exit port 0x501; hlt loop.
inline const std::vector<uint8_t> kExit7 = {
    0x66, 0xBA, 0xF8, 0x03,        // mov dx, 0x3f8
    0xB0, 'h',  0xEE,              // mov al, 'h'; out dx, al
    0xB0, 'i',  0xEE,              // mov al, 'i'; out dx, al
    0xB0, '\n', 0xEE,              // mov al, '\n'; out dx, al
    0x66, 0xBA, 0x01, 0x05,        // mov dx, 0x501
    0xB8, 0x07, 0x00, 0x00, 0x00,  // mov eax, 7
    0xEF,                          // out dx, eax
    0xF4, 0xEB, 0xFD,              // 1: hlt; jmp 1b
};
// out "spin\n" to COM1, then spin forever (jmp .).
inline const std::vector<uint8_t> kSpin = {
    0x66, 0xBA, 0xF8, 0x03,                               // mov dx, 0x3f8
    0xB0, 's',  0xEE, 0xB0, 'p',  0xEE, 0xB0, 'i', 0xEE,  // "spi"
    0xB0, 'n',  0xEE, 0xB0, '\n', 0xEE,                   // "n\n"
    0xEB, 0xFE,                                           // jmp .
};
// Every vCPU prints one byte, the digit of its index (rdi at entry), and spins: one byte
// per vCPU, so the output says which ones ran however the serial writes interleave.
inline const std::vector<uint8_t> kSpinSayCpu = {
    0x66, 0xBA, 0xF8, 0x03,  // mov dx, 0x3f8
    0x89, 0xF8,              // mov eax, edi
    0x04, '0',               // add al, '0'
    0xEE,                    // out dx, al
    0xEB, 0xFE,              // jmp .
};
// ud2 with no IDT loaded: #UD -> #DF -> triple fault (KVM_EXIT_SHUTDOWN).
inline const std::vector<uint8_t> kTripleFault = {0x0F, 0x0B};
// out "x" to an unmapped port 0x9999, read it back into the exit port.
inline const std::vector<uint8_t> kUnmappedRead = {
    0x66, 0xBA, 0x99, 0x99,  // mov dx, 0x9999
    0xEC,                    // in al, dx   (-> 0xFF)
    0x66, 0xBA, 0x01, 0x05,  // mov dx, 0x501
    0xEE,                    // out dx, al  (exit status 255)
    0xF4, 0xEB, 0xFD,
};
// Reads one byte at the start of the page-pool window (4 GiB for 128 MiB of RAM) and
// exits with it: 0 when the pool's first chunk is mapped there (zeroed pages), 255
// when the access became an MMIO exit to an unmapped address.
inline const std::vector<uint8_t> kReadPoolWindow = {
    0x48, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,  // movabs rax, 0x100000000
    0x8A, 0x00,                                                  // mov al, [rax]
    0x66, 0xBA, 0x01, 0x05,                                      // mov dx, 0x501
    0xEE,                                                        // out dx, al
    0xF4, 0xEB, 0xFD,
};
// Same, at the last page of the 1 GiB window (beyond every chunk): 255.
inline const std::vector<uint8_t> kReadPoolWindowEnd = {
    0x48, 0xB8, 0x00, 0xF0, 0xFF, 0x3F, 0x01, 0x00, 0x00, 0x00,  // movabs rax, 0x13FFFF000
    0x8A, 0x00, 0x66, 0xBA, 0x01, 0x05, 0xEE, 0xF4, 0xEB, 0xFD,
};
}  // namespace guests

struct TestElf {
  static constexpr uint64_t kLoad = 0x100000;
  static constexpr uint64_t kCodeOffset = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);

  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> ph;
  std::vector<uint8_t> code;

  // One PT_LOAD covering the whole file at kLoad, 4 KiB of .bss, entry at the code.
  static TestElf with_code(const std::vector<uint8_t>& code) {
    TestElf e;
    e.code = code;
    std::memcpy(e.eh.e_ident, ELFMAG, SELFMAG);
    e.eh.e_ident[EI_CLASS] = ELFCLASS64;
    e.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    e.eh.e_ident[EI_VERSION] = EV_CURRENT;
    e.eh.e_type = ET_EXEC;
    e.eh.e_machine = EM_X86_64;
    e.eh.e_version = EV_CURRENT;
    e.eh.e_entry = kLoad + kCodeOffset;
    e.eh.e_phoff = sizeof(Elf64_Ehdr);
    e.eh.e_ehsize = sizeof(Elf64_Ehdr);
    e.eh.e_phentsize = sizeof(Elf64_Phdr);
    e.eh.e_phnum = 1;
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_X | PF_W;
    p.p_offset = 0;
    p.p_vaddr = p.p_paddr = kLoad;
    p.p_filesz = kCodeOffset + code.size();
    p.p_memsz = p.p_filesz + 4096;
    p.p_align = 4096;
    e.ph.push_back(p);
    return e;
  }

  // Header, then the program headers as they are (even if e_phnum disagrees), then code.
  std::vector<std::byte> bytes() const {
    std::vector<std::byte> out(sizeof(eh) + ph.size() * sizeof(Elf64_Phdr) + code.size());
    std::memcpy(out.data(), &eh, sizeof(eh));
    if (!ph.empty())
      std::memcpy(out.data() + sizeof(eh), ph.data(), ph.size() * sizeof(Elf64_Phdr));
    std::memcpy(out.data() + sizeof(eh) + ph.size() * sizeof(Elf64_Phdr), code.data(), code.size());
    return out;
  }

  void write_to(const std::string& path) const {
    auto b = bytes();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
};

}  // namespace labyrinth::testing
