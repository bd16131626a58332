// guest/drivers/lnic/lnic_diagnostics.cc — what the lnic driver says: names of its
// errors, faults and registers, the DEVICE BUG and misuse lines, print_stats().
#include <stdarg.h>

#include "guest/drivers/lnic/lnic.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/print.h"
#include "guest/runtime/serial.h"
#include "guest/runtime/tsc.h"

namespace guest {

namespace {

// Indexed by the enum's value: the static_asserts below keep each table as long as
// its enum.
constexpr const char* kErrorNames[] = {
    "ok",                                                       // kNone
    "no lnic PCI function with that index",                     // kNoDevice
    "lnic MMIO window unusable (size or not identity-mapped)",  // kBadWindow
    "the device reports no usable page-pool window",            // kNoPool
    "MAGIC register is not LNIC_MAGIC",                         // kBadMagic
    "VERSION register is not LNIC_VERSION",                     // kBadVersion
    "invalid driver options (ring sizes, tx_buffers)",          // kBadOptions
    "rings and TX buffers do not fit the driver arena",         // kArenaFull
    "the NIC's interrupt vector has another handler",           // kVectorBusy
    "TX frames still in flight",                                // kBusy
    "device reported LNIC_STATUS_CONFIG_ERROR",                 // kConfigRejected
    "device not RUNNING after ENABLE",                          // kNotRunning
};
static_assert(sizeof(kErrorNames) / sizeof(kErrorNames[0]) ==
              static_cast<uint32_t>(LnicError::kNotRunning) + 1);

constexpr const char* kFaultNames[] = {
    "bad completion",            // kBadCompletion
    "RX prod beyond ring",       // kRxProdBeyond
    "page delivered twice",      // kPageTwice
    "completion seq backwards",  // kSeqBackwards
    "RETURN cons insane",        // kRetConsBad
    "TX cons insane",            // kTxConsBad
    "ring stalled",              // kStall
    "MSI despite NO_IRQ",        // kIrqWhilePolling
    "RX walked re-entrantly",    // kReentered
};
static_assert(sizeof(kFaultNames) / sizeof(kFaultNames[0]) ==
              static_cast<uint32_t>(LnicFault::kCount));

struct RegName {
  uint32_t offset;
  const char* name;
};
constexpr RegName kRegNames[] = {
    {LNIC_REG_MAGIC, "MAGIC"},
    {LNIC_REG_VERSION, "VERSION"},
    {LNIC_REG_FEATURES, "FEATURES"},
    {LNIC_REG_STATUS, "STATUS"},
    {LNIC_REG_CONTROL, "CONTROL"},
    {LNIC_REG_CONFIG_ERROR, "CONFIG_ERROR"},
    {LNIC_REG_MAC_LO, "MAC_LO"},
    {LNIC_REG_MAC_HI, "MAC_HI"},
    {LNIC_REG_RX_RING_LO, "RX_RING_LO"},
    {LNIC_REG_RX_RING_HI, "RX_RING_HI"},
    {LNIC_REG_RX_RING_SIZE, "RX_RING_SIZE"},
    {LNIC_REG_RET_RING_LO, "RET_RING_LO"},
    {LNIC_REG_RET_RING_HI, "RET_RING_HI"},
    {LNIC_REG_RET_RING_SIZE, "RET_RING_SIZE"},
    {LNIC_REG_TX_RING_LO, "TX_RING_LO"},
    {LNIC_REG_TX_RING_HI, "TX_RING_HI"},
    {LNIC_REG_TX_RING_SIZE, "TX_RING_SIZE"},
    {LNIC_REG_POOL_BASE_LO, "POOL_BASE_LO"},
    {LNIC_REG_POOL_BASE_HI, "POOL_BASE_HI"},
    {LNIC_REG_POOL_SIZE_LO, "POOL_SIZE_LO"},
    {LNIC_REG_POOL_SIZE_HI, "POOL_SIZE_HI"},
    {LNIC_REG_PAGES_HELD, "PAGES_HELD"},
    {LNIC_REG_VIOLATIONS, "VIOLATIONS"},
    {LNIC_REG_RET_DOORBELL, "RET_DOORBELL"},
    {LNIC_REG_TX_DOORBELL, "TX_DOORBELL"},
    {LNIC_REG_FLOOR_ARM, "FLOOR_ARM"},
};

template <typename Enum, uint32_t N>
const char* name_of(Enum e, const char* const (&names)[N]) {
  const auto i = static_cast<uint32_t>(e);
  return i < N ? names[i] : "?";
}

// One report line, "lnic<i>: <label>: <message>". The message is formatted into a
// bounded buffer first so the line reaches the serial port in one printf.
void print_report(uint32_t index, const char* label, const char* fmt, va_list args) {
  char line[200];
  vsnprintf(line, sizeof(line), fmt, args);
  printf("lnic%u: %s: %s\n", index, label, line);
}

}  // namespace

const char* to_string(LnicError e) {
  return name_of(e, kErrorNames);
}

const char* to_string(LnicFault f) {
  return name_of(f, kFaultNames);
}

const char* lnic_reg_name(uint32_t offset) {
  for (const RegName& r : kRegNames) {
    if (r.offset == offset) return r.name;
  }
  return "?";
}

// Said once: a program that calls with interrupts on does so on every call.
void Lnic::check_thread_context() {
  if (!options_.poll && interrupts_enabled() && !warned_context_) {
    warned_context_ = true;
    driver_error("called with interrupts enabled in interrupt mode (races the handler)");
  }
}

// Always counted, printed up to log_limit times per kind: a device that keeps
// misbehaving must not flood the serial port (every character is a VM exit).
void Lnic::fault(LnicFault kind, const char* fmt, ...) {
  const uint64_t n = ++stats_.faults[static_cast<uint32_t>(kind)];
  if (n > options_.log_limit) return;
  // The handler may interrupt code that holds the serial lock: skip the line
  // then (it is still counted) rather than deadlock.
  if (serial_lock().held_by_me()) return;
  char label[80];
  snprintf(label, sizeof(label), "DEVICE BUG (%s)%s", to_string(kind),
           n == options_.log_limit ? ", further ones only counted" : "");
  va_list args;
  va_start(args, fmt);
  print_report(index_, label, fmt, args);
  va_end(args);
}

void Lnic::driver_error(const char* fmt, ...) {
  const uint64_t n = ++stats_.driver_errors;
  if (n > options_.log_limit || serial_lock().held_by_me()) return;
  va_list args;
  va_start(args, fmt);
  print_report(index_, "driver misuse", fmt, args);
  va_end(args);
}

void Lnic::print_stats(const char* who) const {
  const LnicStats& s = stats_;
  printf(
      "%s: lnic%u rx frames=%lu bytes=%lu batches=%lu max_batch=%lu irqs=%lu empty_irqs=%lu "
      "seq_jumps=%lu\n",
      who, index_, s.rx_frames, s.rx_bytes, s.rx_batches, s.rx_max_batch, s.irqs, s.irqs_empty,
      s.rx_seq_jumps);
  if (options_.account_busy) {
    printf("%s: lnic%u busy %lu us in handler/poll (%lu ns per frame)\n", who, index_,
           tsc_to_us(s.busy_cycles),
           s.rx_frames != 0 ? tsc_to_us(s.busy_cycles) * 1000 / s.rx_frames : 0);
  }
  printf(
      "%s: lnic%u returns=%lu ret_doorbells=%lu ret_full_waits=%lu ret_wait_max_us=%lu "
      "returns_lost=%lu pages_held=%lu | tx frames=%lu bytes=%lu completed=%lu doorbells=%lu "
      "full=%lu | floor armed=%lu seen=%lu\n",
      who, index_, s.returns, s.ret_doorbells, s.ret_full_waits, s.ret_wait_max_us, s.returns_lost,
      owned_.owned(), s.tx_frames, s.tx_bytes, s.tx_completed, s.tx_doorbells, s.tx_full,
      s.floor_armed, s.floor_irqs);
  if (s.device_faults() != 0) {
    printf("%s: lnic%u DEVICE FAULTS %lu:", who, index_, s.device_faults());
    for (uint32_t k = 0; k < static_cast<uint32_t>(LnicFault::kCount); ++k) {
      if (s.faults[k] != 0) printf(" [%s]=%lu", to_string(static_cast<LnicFault>(k)), s.faults[k]);
    }
    printf("\n");
  }
  if (s.driver_errors != 0) printf("%s: lnic%u driver misuse: %lu\n", who, index_, s.driver_errors);
}

}  // namespace guest
