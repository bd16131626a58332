// KVM wrapper tests on the real /dev/kvm (skipped only where it is absent).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/fd.h"
#include "vmm/kvm/irqfd.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/mmap_region.h"

namespace labyrinth::vmm {
namespace {

bool have_kvm() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

TEST(SlotAllocator, LowestFreeFirstAndBounded) {
  SlotAllocator slots(3);
  EXPECT_EQ(slots.allocate(), 0u);
  EXPECT_EQ(slots.allocate(), 1u);
  EXPECT_EQ(slots.allocate(), 2u);
  EXPECT_FALSE(slots.allocate().has_value());
  EXPECT_TRUE(slots.release(1));
  EXPECT_FALSE(slots.release(1)) << "double release";
  EXPECT_FALSE(slots.release(7)) << "out of range";
  EXPECT_EQ(slots.allocate(), 1u);
  EXPECT_EQ(slots.in_use(), 3u);
}

TEST(Kvm, OpensAndReportsCapabilities) {
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available";
  auto kvm = Kvm::open();
  ASSERT_TRUE(kvm.has_value()) << to_string(kvm.error());
  EXPECT_GE(kvm->vcpu_mmap_size(), sizeof(kvm_run));
  EXPECT_GE(kvm->max_memslots(), 32u);
  EXPECT_FALSE(kvm->supported_cpuid().empty());
  bool leaf1 = false;
  for (const auto& e : kvm->supported_cpuid()) leaf1 |= e.function == 1;
  EXPECT_TRUE(leaf1);
  EXPECT_EQ(Kvm::open("/nonexistent/kvm").error(), Error::kvm_unavailable);
}

TEST(Vm, MemslotsIrqfdIoeventfdAndRouting) {
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available";
  auto kvm = Kvm::open().value();  // checked by Kvm.OpensAndReportsCapabilities
  auto vm = Vm::create(kvm);
  ASSERT_TRUE(vm.has_value()) << to_string(vm.error());
  auto ram = MmapRegion::anonymous(4 << 20).value();  // lazily backed
  auto a = (*vm)->add_memslot(0, 2 << 20, ram.data());
  auto b = (*vm)->add_memslot(4ull << 30, 2 << 20, ram.data() + (2 << 20));
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ((*vm)->memslots_in_use(), 2u);
  // Overlapping guest ranges are refused by KVM, and the slot number is given back.
  EXPECT_EQ((*vm)->add_memslot(0, 2 << 20, ram.data()).error(), Error::kvm_ioctl_failed);
  EXPECT_EQ((*vm)->memslots_in_use(), 2u);
  EXPECT_TRUE((*vm)->remove_memslot(*a));
  EXPECT_EQ((*vm)->remove_memslot(*a).error(), Error::bad_memslot);
  EXPECT_EQ((*vm)->add_memslot(0, 2 << 20, ram.data()).value(), *a) << "number reused";

  EXPECT_TRUE((*vm)->set_gsi_routing(Vm::default_gsi_routing()));
  auto irq = Irqfd::create(**vm, 5);
  ASSERT_TRUE(irq.has_value());
  (*irq)->trigger();
  irq->reset();  // deregisters

  Fd efd(::eventfd(0, EFD_CLOEXEC));
  EXPECT_TRUE((*vm)->register_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  EXPECT_TRUE((*vm)->unregister_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  EXPECT_TRUE((*vm)->register_ioeventfd(efd.get(), 0x600, 2, true, 0x1234));
}

TEST(Vcpu, RegistersRoundTripAndImmediateExit) {
  if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available";
  auto kvm = Kvm::open().value();  // checked above
  auto vm = Vm::create(kvm).value();
  auto vcpu = Vcpu::create(*vm, 0);
  ASSERT_TRUE(vcpu.has_value());
  kvm_regs r = (*vcpu)->regs().value();
  r.rip = 0x1234;
  r.rdi = 7;
  ASSERT_TRUE((*vcpu)->set_regs(r));
  EXPECT_EQ((*vcpu)->regs().value().rip, 0x1234u);
  EXPECT_GT((*vcpu)->tsc_khz().value(), 0u);
  EXPECT_TRUE((*vcpu)->set_mp_state(KVM_MP_STATE_RUNNABLE));
  // With immediate_exit set, KVM_RUN returns at once without running the guest.
  (*vcpu)->request_immediate_exit();
  EXPECT_EQ((*vcpu)->run().error(), Error::interrupted);
}

}  // namespace
}  // namespace labyrinth::vmm
