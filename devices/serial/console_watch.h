// devices/serial/console_watch.h — reads a Linux guest's console for how it ended.
//
// A SerialOutput in front of another: bytes pass through unchanged; complete lines are
// kept (the last kKeepLines) and checked for the kernel's last words:
//   "reboot: System halted"         kernel_halt(): the VM ends with status 0. Without
//                                   ACPI (acpi=off), Linux turns a power-off into a
//                                   halt (no pm_power_off) and nothing else tells the
//                                   VMM: the CPUs would stay halted forever;
//   "Kernel panic - not syncing"    panicked() turns true; the VMM reports the reset
//                                   that panic=-1 does next (before the report's
//                                   end) as kExitGuestCrashed, not 0;
//   "---[ end Kernel panic"         the panic report is complete (panic=0 would hang
//                                   now): the VM ends with kExitGuestCrashed.
// "reboot: Power down" is not a marker: it comes before the power-off itself, which with
// the machine's ACPI is the S5 write to devices/legacy/acpi_pm.h that ends the VM (and if
// that fails, the kernel goes on to panic: not a silent 0).
// The guest can end itself at any time anyway (exit port, i8042 reset), so a guest
// that prints these strings gains nothing.
//
//   ConsoleWatch watch(fd_output, machine);   // Uart16550 writes into watch
//   ...; if (watch.panicked()) for (auto& l : watch.last_lines()) log(l);
//
// Thread-safety: mu_ guards the lines (the UART calls write under its own lock; the
// Machine reads after the VM stopped). request_shutdown is called with mu_ released.
// Order: Uart16550::mu_ -> ConsoleWatch::mu_.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "devices/serial/uart16550.h"
#include "devices/vm_control.h"

namespace labyrinth::devices {

class ConsoleWatch final : public SerialOutput {
 public:
  static constexpr size_t kKeepLines = 30, kMaxLine = 512;
  static constexpr int kExitPanic = 3;  // vmm's kExitGuestCrashed

  ConsoleWatch(SerialOutput& out, VmControl& control) : out_(out), control_(control) {}
  void write(std::span<const uint8_t> bytes) override;

  bool panicked() const;
  bool powered_off() const;
  std::string panic_line() const;               // the "Kernel panic - not syncing" line, or empty
  std::vector<std::string> last_lines() const;  // oldest first, the partial line last

 private:
  void end_line();  // needs mu_; sets pending_ when a marker line completes

  SerialOutput& out_;
  VmControl& control_;
  mutable std::mutex mu_;
  std::string line_;
  std::deque<std::string> lines_;
  bool panicked_ = false;
  std::string panic_line_;
  bool powered_off_ = false;
  int pending_ = -1;  // a shutdown status to request once mu_ is released
};

}  // namespace labyrinth::devices
