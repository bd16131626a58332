#include "devices/serial/uart16550.h"

namespace labyrinth::devices {

void Uart16550::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 1 || offset > kScr) return;  // byte registers only
  std::lock_guard lock(mu_);
  data[0] = read_reg(static_cast<uint8_t>(offset));
}

void Uart16550::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 1 || offset > kScr) return;
  std::lock_guard lock(mu_);
  write_reg(static_cast<uint8_t>(offset), data[0]);
}

// The highest-priority cause enabled and present (received data before THR empty), as
// the 16550 reports one at a time. Needs mu_.
uint8_t Uart16550::iir() const {
  const uint8_t fifo = (fcr_ & 0x01) ? kIirFifoEnabled : 0;
  if ((ier_ & kIerRxData) && !rx_.empty()) return kIirRxData | fifo;
  if ((ier_ & kIerThrEmpty) && thr_empty_pending_) return kIirThrEmpty | fifo;
  return kIirNone | fifo;
}

uint8_t Uart16550::read_reg(uint8_t reg) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kData: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      const uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIir: {
      const uint8_t v = iir();
      // Reading IIR acknowledges a THR-empty interrupt when it is the one reported.
      if ((v & 0x0F) == kIirThrEmpty) thr_empty_pending_ = false;
      return v;
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      // Transmit is instant (THR always empty); overrun is reported once, then cleared.
      uint8_t v = kLsrThrEmpty | kLsrIdle | lsr_extra_;
      if (!rx_.empty()) v |= kLsrDataReady;
      lsr_extra_ = 0;
      return v;
    }
    case kMsr: {
      if (mcr_ & kMcrLoopback) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) |
                                    ((mcr_ & 0x04) << 4) | ((mcr_ & 0x08) << 4));
      }
      return msr_;
    }
    case kScr:
      return scr_;
    default:
      return 0;
  }
}

void Uart16550::write_reg(uint8_t reg, uint8_t v) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kData:
      if (dlab) {
        dll_ = v;
      } else if (mcr_ & kMcrLoopback) {
        push_rx(v);
      } else {
        out_.write(std::span<const uint8_t>(&v, 1));
        if (ier_ & kIerThrEmpty) {
          thr_empty_pending_ = true;
          irq_.trigger();
        }
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = v;
      } else {
        const uint8_t old = ier_;
        ier_ = v & 0x0F;
        // THR is always empty: enabling its interrupt raises it at once.
        if ((ier_ & kIerThrEmpty) && !(old & kIerThrEmpty)) {
          thr_empty_pending_ = true;
          irq_.trigger();
        }
        if ((ier_ & kIerRxData) && !(old & kIerRxData) && !rx_.empty()) irq_.trigger();
      }
      break;
    case kFcr:
      fcr_ = v & 0xC9;
      if (v & 0x02) rx_.clear();  // clear receive FIFO
      break;
    case kLcr:
      lcr_ = v;
      break;
    case kMcr:
      mcr_ = v & 0x1F;
      break;
    case kScr:
      scr_ = v;
      break;
    default:
      break;  // LSR and MSR are read-only
  }
}

// Needs mu_. The interrupt is raised on the empty -> non-empty edge only: the guest
// drains the FIFO to empty on each one, so more bytes need no new edge.
void Uart16550::push_rx(uint8_t byte) {
  if (rx_.size() >= kRxCapacity) {
    lsr_extra_ |= kLsrOverrun;
    return;
  }
  const bool was_empty = rx_.empty();
  rx_.push_back(byte);
  if (was_empty && (ier_ & kIerRxData)) irq_.trigger();
}

size_t Uart16550::enqueue_input(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (uint8_t b : bytes) {
    if (rx_.size() >= kRxCapacity) break;
    push_rx(b);
    ++n;
  }
  return n;
}

size_t Uart16550::rx_space() const {
  std::lock_guard lock(mu_);
  return kRxCapacity - rx_.size();
}

}  // namespace labyrinth::devices
