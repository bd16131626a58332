// tests/vmm/test_multiboot.h — a crafted Multiboot v1 kernel (ELF32 i386) for loader and VMM tests.
//
//   TestMultiboot k = TestMultiboot::with_code(guests::kMbReport);  // one PT_LOAD at 4 MiB
//   k.flags |= 1u << 2;                    // corrupt the header (fix_checksum() or not)
//   std::vector<std::byte> bytes = k.bytes();
//
// File: ELF header, the program headers, the 12-byte Multiboot header, then the code.
// One PT_LOAD covers the whole file at kLoad with 8 KiB of .bss; e_entry is the code.
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
// 32-bit code: checks EAX == 0x2BADB002 (else exits with 0x7F), prints "mb\n" on COM1,
// then writes the Multiboot information's flags (at [EBX]) to the isa-debug-exit port
// 0xF4: the VMM exits with (flags << 1) | 1, truncated to 8 bits.
inline const std::vector<uint8_t> kMbReport = {
    0x3D, 0x02, 0xB0, 0xAD, 0x2B,  // cmp eax, 0x2BADB002
    0x74, 0x0A,                    // je ok
    0xB8, 0x7F, 0x00, 0x00, 0x00,  // mov eax, 0x7F
    0xE6, 0xF4,                    // out 0xF4, al
    0xF4, 0xEB, 0xFD,              // hlt; jmp hlt
    0x66, 0xBA, 0xF8, 0x03,        // ok: mov dx, 0x3f8
    0xB0, 'm',  0xEE,              // mov al, 'm'; out dx, al
    0xB0, 'b',  0xEE,              // mov al, 'b'; out dx, al
    0xB0, '\n', 0xEE,              // mov al, '\n'; out dx, al
    0x8B, 0x03,                    // mov eax, [ebx]
    0xE7, 0xF4,                    // out 0xF4, eax
    0xF4, 0xEB, 0xFD,              // hlt; jmp hlt
};

// 32-bit code that reports what CPUID tells it, for CPU-template tests: prints the vendor
// string (leaf 0 EBX, EDX, ECX) and a newline on COM1, then leaf 0x80000008 EAX[7:0]
// (MAXPHYADDR) as two decimal digits and a newline, then exits through isa-debug-exit with
// v = x2APIC (leaf 1 ECX[21]) | PCID (leaf 1 ECX[17]) << 1 | INVPCID (leaf 7 EBX[10]) << 2:
// status (v << 1) | 1. No stack, no memory: registers and port writes only.
inline std::vector<uint8_t> cpuid_report_code() {
  std::vector<uint8_t> c = {
      0x31, 0xC0,              // xor eax, eax
      0x0F, 0xA2,              // cpuid
      0x89, 0xD6,              // mov esi, edx
      0x89, 0xCF,              // mov edi, ecx
      0x66, 0xBA, 0xF8, 0x03,  // mov dx, 0x3f8
  };
  const auto out4 = [&c] {  // EBX's four bytes, low first, to COM1
    for (int i = 0; i < 4; ++i) c.insert(c.end(), {0x88, 0xD8, 0xEE, 0xC1, 0xEB, 0x08});
  };  // mov al, bl; out dx, al; shr ebx, 8
  out4();
  c.insert(c.end(), {0x89, 0xF3});  // mov ebx, esi
  out4();
  c.insert(c.end(), {0x89, 0xFB});  // mov ebx, edi
  out4();
  c.insert(c.end(), {
                        0xB0, '\n', 0xEE,              // mov al, '\n'; out dx, al
                        0xB8, 0x08, 0x00, 0x00, 0x80,  // mov eax, 0x80000008
                        0x0F, 0xA2,                    // cpuid
                        0xD4, 0x0A,                    // aam: AH = AL / 10, AL = AL % 10
                        0x66, 0x05, 0x30, 0x30,        // add ax, 0x3030 ("00")
                        0x66, 0xBA, 0xF8, 0x03,        // mov dx, 0x3f8
                        0x88, 0xC3,                    // mov bl, al
                        0x88, 0xE0, 0xEE,              // mov al, ah; out dx, al
                        0x88, 0xD8, 0xEE,              // mov al, bl; out dx, al
                        0xB0, '\n', 0xEE,              // mov al, '\n'; out dx, al
                        0xB8, 0x01, 0x00, 0x00, 0x00,  // mov eax, 1
                        0x0F, 0xA2,                    // cpuid
                        0x89, 0xCD,                    // mov ebp, ecx
                        0xC1, 0xED, 0x15,              // shr ebp, 21
                        0x83, 0xE5, 0x01,              // and ebp, 1      (x2APIC)
                        0xC1, 0xE9, 0x11,              // shr ecx, 17
                        0x83, 0xE1, 0x01,              // and ecx, 1
                        0xD1, 0xE1,                    // shl ecx, 1
                        0x09, 0xCD,                    // or ebp, ecx     (PCID)
                        0xB8, 0x07, 0x00, 0x00, 0x00,  // mov eax, 7
                        0x31, 0xC9,                    // xor ecx, ecx
                        0x0F, 0xA2,                    // cpuid
                        0xC1, 0xEB, 0x0A,              // shr ebx, 10
                        0x83, 0xE3, 0x01,              // and ebx, 1
                        0xC1, 0xE3, 0x02,              // shl ebx, 2
                        0x09, 0xDD,                    // or ebp, ebx     (INVPCID)
                        0x89, 0xE8,                    // mov eax, ebp
                        0xE7, 0xF4,                    // out 0xF4, eax
                        0xF4, 0xEB, 0xFD,              // hlt; jmp hlt
                    });
  return c;
}
}  // namespace guests

struct TestMultiboot {
  static constexpr uint32_t kLoad = 0x400000;
  static constexpr uint32_t kBss = 8192;
  static constexpr uint32_t kHeaderOffset = sizeof(Elf32_Ehdr) + sizeof(Elf32_Phdr);
  static constexpr uint32_t kCodeOffset = kHeaderOffset + 12;

  Elf32_Ehdr eh{};
  std::vector<Elf32_Phdr> ph;
  uint32_t magic = 0x1BADB002, flags = 0x3, checksum = 0;  // page-align + memory info
  std::vector<uint8_t> code;

  static TestMultiboot with_code(const std::vector<uint8_t>& code) {
    TestMultiboot k;
    k.code = code;
    std::memcpy(k.eh.e_ident, ELFMAG, SELFMAG);
    k.eh.e_ident[EI_CLASS] = ELFCLASS32;
    k.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    k.eh.e_ident[EI_VERSION] = EV_CURRENT;
    k.eh.e_type = ET_EXEC;
    k.eh.e_machine = EM_386;
    k.eh.e_version = EV_CURRENT;
    k.eh.e_entry = kLoad + kCodeOffset;
    k.eh.e_phoff = sizeof(Elf32_Ehdr);
    k.eh.e_ehsize = sizeof(Elf32_Ehdr);
    k.eh.e_phentsize = sizeof(Elf32_Phdr);
    k.eh.e_phnum = 1;
    Elf32_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_W | PF_X;
    p.p_vaddr = p.p_paddr = kLoad;
    p.p_filesz = kCodeOffset + static_cast<uint32_t>(code.size());
    p.p_memsz = p.p_filesz + kBss;
    p.p_align = 4096;
    k.ph.push_back(p);
    k.fix_checksum();
    return k;
  }
  void fix_checksum() { checksum = 0u - magic - flags; }

  // Header, program headers as they are (even if e_phnum disagrees), Multiboot header
  // right after them, code. A longer ph list moves the Multiboot header: fix p_filesz.
  std::vector<std::byte> bytes() const {
    const size_t hdr = sizeof(eh) + ph.size() * sizeof(Elf32_Phdr);
    std::vector<std::byte> out(hdr + 12 + code.size());
    std::memcpy(out.data(), &eh, sizeof(eh));
    if (!ph.empty())
      std::memcpy(out.data() + sizeof(eh), ph.data(), ph.size() * sizeof(Elf32_Phdr));
    const uint32_t mb[3] = {magic, flags, checksum};
    std::memcpy(out.data() + hdr, mb, sizeof(mb));
    std::memcpy(out.data() + hdr + 12, code.data(), code.size());
    return out;
  }

  void write_to(const std::string& path) const {
    const auto b = bytes();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
};

}  // namespace labyrinth::testing
