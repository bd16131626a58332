// devices/msi_line.h — an interrupt the guest programs as an MSI message.
//
// vmm/ implements it with a GSI of its own, an MSI routing entry and an irqfd:
// configure() (setup path: may take locks and make system calls, e.g.
// KVM_SET_GSI_ROUTING) sets the message the guest wrote; trigger() is one eventfd
// write, thread-safe, never blocking.
#pragma once

#include <cstdint>

#include "devices/irq_line.h"

namespace labyrinth::devices {

class MsiLine : public IrqLine {
 public:
  // address/data as the guest wrote them (x86: 0xFEExxxxx, vector in data[7:0]).
  // Returns false if the message is unusable (then trigger() does nothing).
  virtual bool configure(uint64_t address, uint32_t data) = 0;
};

}  // namespace labyrinth::devices
