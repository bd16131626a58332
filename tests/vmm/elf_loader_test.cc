#include "vmm/boot/elf_loader.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/vmm/test_elf.h"

namespace labyrinth::vmm {
namespace {

using testing::TestElf;

class ElfLoader : public ::testing::Test {
 protected:
  void SetUp() override {
    // 16 MiB of RAM at 0 and 2 MiB at 4 GiB (a small model of the real map).
    const GpaRange ram[] = {{0, 16 * kMiB}, {4 * kGiB, 2 * kMiB}};
    memory_ = GuestMemory::create(ram).value();  // 18 MiB of lazy anonymous memory
  }
  std::expected<LoadedImage, Error> load(const TestElf& e) { return load_elf(e.bytes(), *memory_); }
  Error rejects(const std::function<void(TestElf&)>& corrupt) {
    TestElf e = TestElf::with_code(testing::guests::kExit7);
    corrupt(e);
    auto r = load(e);
    EXPECT_FALSE(r.has_value());
    return r ? Error{} : r.error();
  }
  std::unique_ptr<GuestMemory> memory_;
};

TEST_F(ElfLoader, LoadsSegmentAndZeroesBss) {
  // Dirty the .bss area first: the loader must clear it.
  auto bss = memory_->translate(TestElf::kLoad + 0x100, 0x1000).value();  // inside RAM
  std::memset(bss.data(), 0xAA, bss.size());
  TestElf e = TestElf::with_code(testing::guests::kExit7);
  auto image = load(e);
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->entry, TestElf::kLoad + TestElf::kCodeOffset);
  EXPECT_EQ(image->low, TestElf::kLoad);
  EXPECT_EQ(image->high, TestElf::kLoad + e.ph[0].p_memsz);
  auto code = memory_->translate(image->entry, e.code.size()).value();
  EXPECT_EQ(std::memcmp(code.data(), e.code.data(), e.code.size()), 0);
  auto tail = memory_->translate(TestElf::kLoad + e.ph[0].p_filesz, 4096).value();
  for (std::byte b : tail) ASSERT_EQ(b, std::byte{0});
}

TEST_F(ElfLoader, RejectsTruncatedHeader) {
  auto bytes = TestElf::with_code({0x90}).bytes();
  bytes.resize(40);
  EXPECT_EQ(load_elf(bytes, *memory_).error(), Error::elf_malformed);
  EXPECT_EQ(load_elf({}, *memory_).error(), Error::elf_malformed);
}

TEST_F(ElfLoader, RejectsBadIdentity) {
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_ident[1] = 'X'; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_ident[EI_CLASS] = ELFCLASS32; }),
            Error::elf_unsupported);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_ident[EI_DATA] = ELFDATA2MSB; }),
            Error::elf_unsupported);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_version = 7; }), Error::elf_unsupported);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_type = ET_DYN; }), Error::elf_unsupported);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_machine = EM_386; }), Error::elf_unsupported);
}

TEST_F(ElfLoader, RejectsBadProgramHeaderTable) {
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phentsize = 32; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phnum = 0; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phnum = 1000; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phnum = 3; }), Error::elf_malformed);  // past EOF
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phoff = 1 << 20; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_phoff = UINT64_MAX - 8; }), Error::elf_malformed);
}

TEST_F(ElfLoader, RejectsSegmentsOutsideTheFile) {
  EXPECT_EQ(rejects([](TestElf& e) { e.ph[0].p_filesz = e.ph[0].p_memsz + 1; }),
            Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.ph[0].p_offset = 8; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.ph[0].p_offset = UINT64_MAX - 4; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) {
              e.ph[0].p_filesz = 1ull << 40;
              e.ph[0].p_memsz = 1ull << 40;
            }),
            Error::elf_malformed);
}

TEST_F(ElfLoader, RejectsBadPlacement) {
  auto place = [](uint64_t paddr) {
    return [paddr](TestElf& e) {
      e.ph[0].p_paddr = paddr;
      e.eh.e_entry = paddr + TestElf::kCodeOffset;
    };
  };
  EXPECT_EQ(rejects(place(0x1000)), Error::elf_bad_placement);           // VMM low memory
  EXPECT_EQ(rejects(place(16 * kMiB - 16)), Error::elf_bad_placement);   // runs off RAM
  EXPECT_EQ(rejects(place(0xC0000000)), Error::elf_bad_placement);       // MMIO gap
  EXPECT_EQ(rejects(place(UINT64_MAX - 64)), Error::elf_bad_placement);  // overflow
  EXPECT_EQ(rejects([](TestElf& e) { e.ph[0].p_memsz = 1ull << 34; }), Error::elf_bad_placement);
  // Straddling from the end of low RAM into nothing is refused even though both
  // ends are "near" RAM.
  EXPECT_EQ(rejects(place(4 * kGiB + 2 * kMiB - 8)), Error::elf_bad_placement);
}

TEST_F(ElfLoader, RejectsEntryOutsideSegments) {
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_entry = 0x5000; }), Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.eh.e_entry = TestElf::kLoad + e.ph[0].p_memsz; }),
            Error::elf_malformed);
}

TEST_F(ElfLoader, RejectsOverlapAndMissingLoad) {
  EXPECT_EQ(rejects([](TestElf& e) {
              e.ph.push_back(e.ph[0]);
              e.ph[1].p_paddr += 16;
              e.eh.e_phnum = 2;
            }),
            Error::elf_malformed);
  EXPECT_EQ(rejects([](TestElf& e) { e.ph[0].p_type = PT_NOTE; }), Error::elf_malformed);
}

TEST_F(ElfLoader, ReadFileRejectsMissingAndNonRegular) {
  EXPECT_EQ(read_file("/nonexistent/labyrinth.elf").error(), Error::io_failed);
  EXPECT_EQ(read_file("/dev/null").error(), Error::io_failed);
}

}  // namespace
}  // namespace labyrinth::vmm
