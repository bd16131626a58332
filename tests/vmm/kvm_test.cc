// KVM wrapper tests on the real /dev/kvm (label kvm: scripts/test.sh runs them where KVM
// works, in the test VM otherwise; without /dev/kvm they fail, never skip).
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "devices/bus/bus.h"
#include "devices/pci/pci_bus.h"
#include "vmm/fd.h"
#include "vmm/kvm/coalesced_pio.h"
#include "vmm/kvm/irqfd.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/mmap_region.h"

namespace labyrinth::vmm {
namespace {

using namespace std::chrono_literals;

bool have_kvm() {
  return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

uint32_t lapic_reg(const kvm_lapic_state& s, uint32_t offset) {
  uint32_t v = 0;
  std::memcpy(&v, s.regs + offset, sizeof v);
  return v;
}

// The vector's bit in the interrupt request register (eight 32-bit words from 0x200, 16
// bytes apart): set when the LAPIC accepted the interrupt and the CPU has not taken it.
bool irr_has(const kvm_lapic_state& s, uint8_t vector) {
  return (lapic_reg(s, 0x200 + (vector / 32) * 0x10) >> (vector % 32) & 1) != 0;
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
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
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

TEST(Vm, MemslotsIoeventfdAndRouting) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
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

  Fd efd(::eventfd(0, EFD_CLOEXEC));
  EXPECT_TRUE((*vm)->register_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  EXPECT_TRUE((*vm)->unregister_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  EXPECT_TRUE((*vm)->register_ioeventfd(efd.get(), 0x600, 2, true, 0x1234));
}

// labyrinth.pit: Vm::create makes KVM's in-kernel PIT unless told not to (kvm-unit-tests'
// -machine pit=off). KVM answers KVM_GET_PIT2 with ENXIO on a VM without one.
TEST(Vm, InKernelPitIsCreatedUnlessSwitchedOff) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
  auto kvm = Kvm::open().value();
  kvm_pit_state2 state{};
  auto with = Vm::create(kvm).value();
  EXPECT_EQ(::ioctl(with->fd(), KVM_GET_PIT2, &state), 0) << std::strerror(errno);
  auto without = Vm::create(kvm, /*pit=*/false);
  ASSERT_TRUE(without.has_value()) << to_string(without.error());
  EXPECT_EQ(::ioctl((*without)->fd(), KVM_GET_PIT2, &state), -1);
  EXPECT_EQ(errno, ENXIO);
}

// A trigger travels eventfd -> KVM's irqfd -> GSI 5 -> IOAPIC pin 5 -> vCPU 0's LAPIC,
// where it waits in the IRR: the vCPU never runs, so nothing takes it. KVM injects an
// IOAPIC-routed irqfd from a work item, some time after the write: polled, bounded.
TEST(Irqfd, TriggerReachesTheLapicThroughTheIoapic) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
  constexpr uint8_t kVector = 0x35;
  auto kvm = Kvm::open().value();
  auto vm = Vm::create(kvm).value();
  auto vcpu = Vcpu::create(*vm, 0).value();
  ASSERT_TRUE(vm->set_gsi_routing(Vm::default_gsi_routing()));
  // The LAPIC accepts fixed interrupts only when software-enabled (SVR bit 8).
  kvm_lapic_state lapic{};
  ASSERT_EQ(::ioctl(vcpu->fd(), KVM_GET_LAPIC, &lapic), 0);
  const uint32_t svr = lapic_reg(lapic, 0xF0) | 0x100;
  std::memcpy(lapic.regs + 0xF0, &svr, sizeof svr);
  ASSERT_EQ(::ioctl(vcpu->fd(), KVM_SET_LAPIC, &lapic), 0);
  // Pin 5: the vector, fixed delivery, edge, active high, unmasked, physical APIC ID 0.
  kvm_irqchip chip{};
  chip.chip_id = KVM_IRQCHIP_IOAPIC;
  ASSERT_EQ(::ioctl(vm->fd(), KVM_GET_IRQCHIP, &chip), 0);
  chip.chip.ioapic.redirtbl[5].bits = kVector;
  ASSERT_EQ(::ioctl(vm->fd(), KVM_SET_IRQCHIP, &chip), 0);
  ASSERT_EQ(::ioctl(vcpu->fd(), KVM_GET_LAPIC, &lapic), 0);
  ASSERT_FALSE(irr_has(lapic, kVector)) << "pending before the trigger";

  auto irq = Irqfd::create(*vm, 5);
  ASSERT_TRUE(irq.has_value()) << to_string(irq.error());
  (*irq)->trigger();
  const auto end = std::chrono::steady_clock::now() + 30s;
  bool pending = false;
  while (!pending && std::chrono::steady_clock::now() < end) {
    ASSERT_EQ(::ioctl(vcpu->fd(), KVM_GET_LAPIC, &lapic), 0);
    pending = irr_has(lapic, kVector);
    if (!pending) std::this_thread::sleep_for(1ms);
  }
  EXPECT_TRUE(pending) << "vector " << int{kVector} << " never reached the LAPIC's IRR";
  irq->reset();  // deregisters
}

// begin_teardown(): deregistrations stop calling into KVM (each one waits for an SRCU
// grace period there; the VM fd's close releases everything at once).
TEST(Vm, TeardownLeavesDeregistrationToTheClose) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
  auto kvm = Kvm::open().value();
  auto vm = Vm::create(kvm).value();
  auto ram = MmapRegion::anonymous(2 << 20).value();
  const uint32_t slot = vm->add_memslot(0, 2 << 20, ram.data()).value();
  Fd efd(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(vm->register_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  // Before: the calls reach KVM (one that names nothing registered is refused there).
  EXPECT_EQ(vm->unregister_ioeventfd(efd.get(), 0xD0001000, 4, false, std::nullopt).error(),
            Error::kvm_ioctl_failed);
  EXPECT_FALSE(vm->tearing_down());

  vm->begin_teardown();
  EXPECT_TRUE(vm->tearing_down());
  // After: bookkeeping only, no ioctl, so even the unknown one is not refused.
  EXPECT_TRUE(vm->unregister_ioeventfd(efd.get(), 0xD0001000, 4, false, std::nullopt));
  EXPECT_TRUE(vm->unregister_ioeventfd(efd.get(), 0xD0000000, 4, false, std::nullopt));
  auto irq = Irqfd::create(*vm, 5);
  ASSERT_TRUE(irq.has_value());
  irq->reset();
  EXPECT_TRUE(vm->remove_memslot(slot));
  EXPECT_EQ(vm->memslots_in_use(), 0u);
  EXPECT_EQ(vm->remove_memslot(slot).error(), Error::bad_memslot) << "still checked";
  vm.reset();  // closes the VM fd with the ioeventfd and the memslot still in KVM
}

TEST(Vcpu, RegistersRoundTripAndImmediateExit) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
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

// A real-mode guest selects 00:00.0's identity dword (OUT 0xCF8), reads it (IN 0xCFC)
// and writes what it read to port 0x501. With CONFIG_ADDRESS coalesced, the first exit
// is the read, the address waits in the ring, and replaying it onto the bus first makes
// the read answer the host bridge's IDs. Without the zone, the first exit is the OUT.
TEST(CoalescedPio, ConfigAddressWaitsInTheRingUntilTheDataRead) {
  ASSERT_TRUE(have_kvm()) << "/dev/kvm is needed (run in the test VM: scripts/vm.sh)";
  auto kvm = Kvm::open().value();
  auto vm = Vm::create(kvm).value();
  auto ram = MmapRegion::anonymous(1 << 20).value();
  ASSERT_TRUE(vm->add_memslot(0, 1 << 20, ram.data()));
  constexpr uint8_t kCode[] = {
      0xBA, 0xF8, 0x0C,                    // mov dx, 0xCF8
      0x66, 0xB8, 0x00, 0x00, 0x00, 0x80,  // mov eax, 0x80000000
      0x66, 0xEF,                          // out dx, eax
      0xBA, 0xFC, 0x0C,                    // mov dx, 0xCFC
      0x66, 0xED,                          // in eax, dx
      0xBA, 0x01, 0x05,                    // mov dx, 0x501
      0x66, 0xEF,                          // out dx, eax
      0xEB, 0xFE,                          // jmp $
  };
  std::memcpy(ram.data() + 0x1000, kCode, sizeof kCode);
  auto vcpu = Vcpu::create(*vm, 0).value();
  const CoalescedPio::Zone zone{.port = 0xCF8, .len = 4};
  auto coalesced = CoalescedPio::create(*vm, *vcpu, std::span(&zone, 1));
  ASSERT_TRUE(coalesced.has_value()) << to_string(coalesced.error());
  kvm_sregs sregs = vcpu->sregs().value();
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  ASSERT_TRUE(vcpu->set_sregs(sregs));
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 2;
  ASSERT_TRUE(vcpu->set_regs(regs));

  devices::Bus pio("pio");
  ASSERT_TRUE(pio.insert(std::make_shared<devices::PciBus>(), devices::PciBus::kBase,
                         devices::PciBus::kLen));
  kvm_run* run = vcpu->run_data();
  ASSERT_TRUE(vcpu->run());
  ASSERT_EQ(run->exit_reason, uint32_t{KVM_EXIT_IO});
  EXPECT_EQ(run->io.direction, KVM_EXIT_IO_IN) << "the OUT to 0xCF8 exited";
  EXPECT_EQ(run->io.port, 0xCFC);
  (*coalesced)->replay(pio);
  EXPECT_EQ((*coalesced)->replayed(), 1u);
  auto* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  pio.read(run->io.port, std::span<uint8_t>(data, run->io.size));
  ASSERT_TRUE(vcpu->run());
  ASSERT_EQ(run->exit_reason, uint32_t{KVM_EXIT_IO});
  ASSERT_EQ(run->io.port, 0x501);
  uint32_t seen = 0;
  std::memcpy(&seen, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, 4);
  EXPECT_EQ(seen, 0x0D578086u) << "the host bridge's device and vendor IDs";
  EXPECT_EQ((*coalesced)->rejected(), 0u);
}

}  // namespace
}  // namespace labyrinth::vmm
