// Checks that every test guest (LABYRINTH_GUEST_DIR/<name>.elf: build/guest, in the
// sanitizer builds too, which build no guests) is an image the VMM's ELF loader can
// boot under guest/abi/boot_info.h: a static ELF64 x86-64 executable whose PT_LOAD
// segments are identity-placed (vaddr == paddr) at or above LABYRINTH_GUEST_LOAD_MIN
// and below the MMIO gap, with the entry point in an executable segment and no
// dynamic linking.
#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "guest/abi/boot_info.h"

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class GuestImage : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    path_ = std::string(LABYRINTH_GUEST_DIR) + "/" + GetParam() + ".elf";
    bytes_ = read_file(path_);
    ASSERT_GE(bytes_.size(), sizeof(Elf64_Ehdr)) << path_;
    std::memcpy(&ehdr_, bytes_.data(), sizeof(ehdr_));
  }

  std::vector<Elf64_Phdr> program_headers() const {
    std::vector<Elf64_Phdr> out(ehdr_.e_phnum);
    for (size_t i = 0; i < out.size(); ++i) {
      const size_t off = ehdr_.e_phoff + i * ehdr_.e_phentsize;
      EXPECT_LE(off + sizeof(Elf64_Phdr), bytes_.size());
      if (off + sizeof(Elf64_Phdr) > bytes_.size()) return {};
      std::memcpy(&out[i], bytes_.data() + off, sizeof(Elf64_Phdr));
    }
    return out;
  }

  std::string path_;
  std::vector<char> bytes_;
  Elf64_Ehdr ehdr_{};
};

TEST_P(GuestImage, IsStaticElf64Executable) {
  EXPECT_EQ(std::memcmp(ehdr_.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(ehdr_.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(ehdr_.e_ident[EI_DATA], ELFDATA2LSB);
  EXPECT_EQ(ehdr_.e_type, ET_EXEC);
  EXPECT_EQ(ehdr_.e_machine, EM_X86_64);
  EXPECT_EQ(ehdr_.e_phentsize, sizeof(Elf64_Phdr));
  for (const Elf64_Phdr& ph : program_headers()) {
    EXPECT_NE(ph.p_type, static_cast<uint32_t>(PT_INTERP));
    EXPECT_NE(ph.p_type, static_cast<uint32_t>(PT_DYNAMIC));
  }
}

TEST_P(GuestImage, LoadSegmentsAreIdentityPlacedInLowRam) {
  int loads = 0;
  bool entry_in_text = false;
  for (const Elf64_Phdr& ph : program_headers()) {
    if (ph.p_type != PT_LOAD) continue;
    ++loads;
    EXPECT_EQ(ph.p_vaddr, ph.p_paddr);
    EXPECT_GE(ph.p_paddr, LABYRINTH_GUEST_LOAD_MIN);
    EXPECT_LE(ph.p_paddr + ph.p_memsz, LABYRINTH_MMIO_GAP_START);
    EXPECT_LE(ph.p_filesz, ph.p_memsz);
    EXPECT_LE(ph.p_offset + ph.p_filesz, bytes_.size());
    EXPECT_FALSE((ph.p_flags & PF_W) && (ph.p_flags & PF_X)) << "W+X segment";
    if ((ph.p_flags & PF_X) && ehdr_.e_entry >= ph.p_vaddr &&
        ehdr_.e_entry < ph.p_vaddr + ph.p_memsz) {
      entry_in_text = true;
    }
  }
  EXPECT_GE(loads, 1);
  EXPECT_TRUE(entry_in_text) << "entry 0x" << std::hex << ehdr_.e_entry;
}

// Every guest program: one per guest/programs/*.cc, listed by tests/guest/CMakeLists.txt
// (which also checks that guest/CMakeLists.txt builds exactly these).
constexpr const char* kGuestPrograms[] = {
#include "guest_programs.inc"
};

INSTANTIATE_TEST_SUITE_P(AllGuests, GuestImage, ::testing::ValuesIn(kGuestPrograms),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return std::string(param_info.param);
                         });

}  // namespace
