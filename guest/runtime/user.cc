// CPL-3 entry and the interrupt stack bookkeeping. See user.h.
#include "guest/runtime/user.h"

#include "guest/abi/boot_info.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/runtime.h"

extern "C" char guest_user_irq_stack[];  // user.S
extern "C" char guest_user_irq_stack_end[];
extern "C" void guest_enter_user_mode();

static_assert(guest::kUserIrqStackSize == 16 * 1024, "update IRQ_STACK_SIZE in user.S");

namespace guest {

bool enter_user_mode() {
  if (cpl() == 3) return true;
  if (this_cpu() != 0) return false;  // one TSS, one RSP0: see user.h
  // The CPU reads RSP0 from the TSS at every interrupt taken at CPL 3. The
  // field is 8 bytes at offset 4 (unaligned, which x86 allows).
  *reinterpret_cast<volatile uint64_t*>(LABYRINTH_TSS_RSP0_GPA) =
      reinterpret_cast<uint64_t>(guest_user_irq_stack_end);
  guest_user_if = interrupts_enabled() ? 1 : 0;  // PUSHF still tells the truth here
  guest_enter_user_mode();
  return true;
}

bool on_user_irq_stack(uint64_t rsp) {
  return rsp > reinterpret_cast<uint64_t>(guest_user_irq_stack) &&
         rsp <= reinterpret_cast<uint64_t>(guest_user_irq_stack_end);
}

}  // namespace guest
