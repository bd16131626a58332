// devices/vm_control.h — how a device ends the VM (exit device, i8042 reset) or puts it
// to sleep (ACPI S3).
//
// vmm/'s Machine implements it: the first request wins and fixes the exit status;
// every vCPU is kicked out of KVM_RUN and the event loop stops. Thread-safe.
#pragma once

#include <string_view>

namespace labyrinth::devices {

class VmControl {
 public:
  virtual ~VmControl() = default;
  // status: the process exit status to report (0..255). reason: for the log.
  virtual void request_shutdown(int status, std::string_view reason) = 0;
  // ACPI S3 (devices/legacy/acpi_pm.h), asked for on a vCPU thread: no vCPU runs another
  // instruction until the machine wakes (vmm/machine.h).
  virtual void request_suspend() = 0;
};

}  // namespace labyrinth::devices
