// devices/irq_line.h — how a device raises its interrupt without knowing KVM.
//
// vmm/ implements it with an irqfd (an eventfd registered with KVM_IRQFD): trigger()
// is one eventfd write, safe from any thread and never blocking. Tests use a counter.
#pragma once

namespace labyrinth::devices {

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Raises one edge on the line. Thread-safe, non-blocking.
  virtual void trigger() = 0;
};

}  // namespace labyrinth::devices
