#include "devices/serial/console_watch.h"

namespace labyrinth::devices {

// Passes the bytes on, then looks for the kernel's last words line by line. The
// shutdown is requested after mu_ is dropped, so no VM lock is taken under the watch's.
void ConsoleWatch::write(std::span<const uint8_t> bytes) {
  out_.write(bytes);
  int status = -1;
  {
    std::lock_guard lock(mu_);
    for (const uint8_t b : bytes) {
      if (b == '\n') {
        end_line();
      } else if (b != '\r' && line_.size() < kMaxLine) {
        line_.push_back(static_cast<char>(b));
      }
    }
    status = pending_;
    pending_ = -1;
  }
  if (status == 0) control_.request_shutdown(0, "guest powered off (kernel console)");
  if (status > 0) control_.request_shutdown(status, "guest kernel panic (kernel console)");
}

// Needs mu_. A panic is reported at its end marker, not its first line, so the whole
// trace reaches the console (and last_lines()) before the VM stops.
void ConsoleWatch::end_line() {
  if (!panicked_ && !powered_off_) {
    if (line_.find("reboot: System halted") != std::string::npos) {
      powered_off_ = true;
      pending_ = 0;
    } else if (line_.find("Kernel panic - not syncing") != std::string::npos) {
      panicked_ = true;
      panic_line_ = line_;
    }
  }
  if (panicked_ && line_.find("---[ end Kernel panic") != std::string::npos) pending_ = kExitPanic;
  lines_.push_back(std::move(line_));
  line_.clear();
  if (lines_.size() > kKeepLines) lines_.pop_front();
}

bool ConsoleWatch::panicked() const {
  std::lock_guard lock(mu_);
  return panicked_;
}

bool ConsoleWatch::powered_off() const {
  std::lock_guard lock(mu_);
  return powered_off_;
}

std::string ConsoleWatch::panic_line() const {
  std::lock_guard lock(mu_);
  return panic_line_;
}

std::vector<std::string> ConsoleWatch::last_lines() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out(lines_.begin(), lines_.end());
  if (!line_.empty()) out.push_back(line_);
  return out;
}

}  // namespace labyrinth::devices
