// Proof that pool pages are really mapped into the guest: the host writes a pattern
// through a page's host address, a minimal long-mode vCPU reads the page's
// guest-physical address and reports what it read through port I/O exits.
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "allocator/kvm/kvm_fd_sink.h"
#include "allocator/page_pool.h"
#include "tests/allocator/kvm_vm.h"

namespace labyrinth::alloc {
namespace {

using testing::KvmVm;

constexpr uint64_t kRamSize = 2 << 20;  // one 2 MiB RAM slot at GPA 0
constexpr uint64_t kPml4 = 0x1000, kPdptLow = 0x2000, kPdLow = 0x3000, kPdWin = 0x4000;
constexpr uint64_t kCode = 0x8000;
constexpr uint16_t kReportPort = 0x10;
constexpr uint64_t kWindow = 4ull << 30;

// Identity maps [0, 2 MiB) and the first 1 GiB of the pool window with 2 MiB pages.
void build_page_tables(uint8_t* ram) {
  auto* pml4 = reinterpret_cast<uint64_t*>(ram + kPml4);
  auto* pdpt = reinterpret_cast<uint64_t*>(ram + kPdptLow);
  auto* pd_low = reinterpret_cast<uint64_t*>(ram + kPdLow);
  auto* pd_win = reinterpret_cast<uint64_t*>(ram + kPdWin);
  constexpr uint64_t kP = 1, kW = 2, kPs = 0x80;
  pml4[0] = kPdptLow | kP | kW;
  pdpt[0] = kPdLow | kP | kW;
  pdpt[kWindow >> 30] = kPdWin | kP | kW;
  pd_low[0] = 0 | kP | kW | kPs;
  for (uint64_t i = 0; i < 512; ++i) pd_win[i] = (kWindow + (i << 21)) | kP | kW | kPs;
}

// movabs rax, [gpa]; out 0x10, eax; shr rax, 32; out 0x10, eax; hlt
std::vector<uint8_t> reader_code(uint64_t gpa) {
  std::vector<uint8_t> c = {0x48, 0xA1};
  for (int i = 0; i < 8; ++i) c.push_back(static_cast<uint8_t>(gpa >> (8 * i)));
  const uint8_t rest[] = {0xE7, kReportPort, 0x48, 0xC1, 0xE8, 0x20, 0xE7, kReportPort, 0xF4};
  c.insert(c.end(), std::begin(rest), std::end(rest));
  return c;
}

void enter_long_mode(int vcpu) {
  kvm_sregs s{};
  ASSERT_EQ(ioctl(vcpu, KVM_GET_SREGS, &s), 0);
  kvm_segment code{};
  code.base = 0;
  code.limit = 0xFFFFFFFF;
  code.selector = 0x8;
  code.type = 11;  // execute/read, accessed
  code.present = 1;
  code.s = 1;
  code.l = 1;
  code.g = 1;
  kvm_segment data = code;
  data.selector = 0x10;
  data.type = 3;  // read/write, accessed
  data.l = 0;
  data.db = 1;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.cr3 = kPml4;
  s.cr4 = 1u << 5;                  // PAE
  s.cr0 = 1u | (1u << 31);          // PE | PG
  s.efer = (1u << 8) | (1u << 10);  // LME | LMA
  ASSERT_EQ(ioctl(vcpu, KVM_SET_SREGS, &s), 0);
  kvm_regs r{};
  r.rip = kCode;
  r.rflags = 2;
  r.rsp = kRamSize - 16;
  ASSERT_EQ(ioctl(vcpu, KVM_SET_REGS, &r), 0);
}

// Runs the vCPU until HLT; returns the two 32-bit values written to the report port.
std::vector<uint32_t> run_until_hlt(int vcpu, kvm_run* run) {
  std::vector<uint32_t> out;
  for (int exits = 0; exits < 100; ++exits) {
    if (ioctl(vcpu, KVM_RUN, 0) != 0) {
      ADD_FAILURE() << "KVM_RUN failed: " << std::strerror(errno);
      return out;
    }
    if (run->exit_reason == KVM_EXIT_HLT) return out;
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
        run->io.port == kReportPort && run->io.size == 4) {
      uint32_t v;
      std::memcpy(&v, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 4);
      out.push_back(v);
      continue;
    }
    ADD_FAILURE() << "unexpected exit reason " << run->exit_reason;
    return out;
  }
  ADD_FAILURE() << "guest did not halt";
  return out;
}

TEST(PagePoolGuestMapping, GuestReadsWhatTheHostWroteThroughThePool) {
  auto vm = KvmVm::open();
  ASSERT_TRUE(vm) << KvmVm::kMissingMessage;

  void* ram = mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(ram, MAP_FAILED);
  kvm_userspace_memory_region region{0, 0, 0, kRamSize, reinterpret_cast<uint64_t>(ram)};
  ASSERT_EQ(ioctl(vm->vm_fd(), KVM_SET_USER_MEMORY_REGION, &region), 0);
  build_page_tables(static_cast<uint8_t*>(ram));

  KvmFdMemslotSink sink(vm->vm_fd(), 1, 8);
  PoolConfig cfg;
  cfg.window_gpa = kWindow;
  cfg.window_size = 1ull << 30;
  cfg.initial_chunks = 2;  // two memslots: use a page from the second one
  cfg.start_worker = false;
  auto pool = PagePool::create(cfg, sink);
  ASSERT_TRUE(pool) << to_string(pool.error());
  PageCache* cache = (*pool)->attach_cache().value();  // fresh pool has free slots
  Page page{};
  for (int i = 0; i < 600; ++i) {  // walk past the first chunk
    page = (*pool)->alloc_page(kGfpAtomicExclusive, 1, cache).value();
    if (page.gpa >= kWindow + (2 << 20)) break;
  }
  ASSERT_GE(page.gpa, kWindow + (2 << 20));
  const uint64_t pattern = 0x1abe'5a17'dead'beefull;
  const uint64_t offset = 0x7F8;  // somewhere inside the page
  std::memcpy(page.host + offset, &pattern, sizeof pattern);

  const auto code = reader_code(page.gpa + offset);
  std::memcpy(static_cast<uint8_t*>(ram) + kCode, code.data(), code.size());

  const int vcpu = ioctl(vm->vm_fd(), KVM_CREATE_VCPU, 0);
  ASSERT_GE(vcpu, 0);
  const int run_size = ioctl(vm->kvm_fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
  auto* run =
      static_cast<kvm_run*>(mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  ASSERT_NE(run, MAP_FAILED);
  enter_long_mode(vcpu);

  const auto reported = run_until_hlt(vcpu, run);
  ASSERT_EQ(reported.size(), 2u);
  const uint64_t seen = reported[0] | (uint64_t{reported[1]} << 32);
  EXPECT_EQ(seen, pattern) << std::hex << "guest read 0x" << seen << " at GPA 0x"
                           << page.gpa + offset;

  munmap(run, run_size);
  close(vcpu);
  pool->reset();
  munmap(ram, kRamSize);
}

}  // namespace
}  // namespace labyrinth::alloc
