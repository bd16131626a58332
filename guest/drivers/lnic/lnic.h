// guest/drivers/lnic/lnic.h — guest driver for the Labyrinth NIC (lnic): the other
// half of guest/abi/lnic.h.
//
//   guest::LnicVerdict on_frame(guest::Lnic& nic, const guest::LnicFrame& f, void*) {
//     consume(f.data, f.len);
//     return guest::LnicVerdict::kReturn;   // driver gives the page back at once
//   }
//   constinit guest::Lnic nic;               // one object per NIC, in .bss
//   guest::lapic_enable();
//   if (auto e = nic.init(info, 0, guest::LnicOptions{}, on_frame, nullptr);
//       e != guest::LnicError::kNone) { guest::printf("%s\n", guest::to_string(e)); ... }
//   for (;;) { guest::cli(); if (done) break; nic.service(); guest::sti_hlt(); }
//   nic.print_stats("sink");
//
// Files: lnic_setup.cc (probe, bring_up, reset), lnic_datapath.cc (the handler,
// poll(), RETURN, TX, floors), lnic_diagnostics.cc (names, reports, print_stats),
// lnic_ring.h (the pure logic, host-tested). lnic_raw.h is a test-only back door
// (lnic_hostile, the host tests), not part of this API.
//
// What the driver does (lnic.h's bring-up, step by step):
//   probe()    finds PCI function `index` (vendor/device LNIC_PCI_*), enables its
//              BAR0 and MSI-X, checks MAGIC/VERSION and the pool window (read from
//              LNIC_REG_POOL_*), reads the MAC;
//   bring_up() carves the three rings (4 KiB aligned, zeroed) and the TX buffers
//              out of a static .bss arena, writes ring GPAs/sizes, the RX MSI-X entry
//              (boot CPU's LAPIC ID, vector kLnicVectorBase + index), registers the
//              interrupt handler, sets LNIC_RING_F_NO_IRQ in poll mode, writes
//              ENABLE and checks STATUS (CONFIG_ERROR -> kConfigRejected, with the
//              failing register in config_error_register()).
//
// Receive. The interrupt handler reads the TSC first thing, records a floor
// interrupt if one was signalled (below), reclaims finished TX slots, consumes up
// to rx_budget completions (acquire load of RX prod, release store of RX cons),
// checks each (len 1..LNIC_FRAME_MAX, page 4 KiB aligned inside the pool window,
// page not already owned, completion seq increasing), calls the program's
// callback, and posts the page to the RETURN ring with t_guest_irq = the entry
// TSC. At the end of the batch it publishes RETURN prod once, rings the RETURN
// doorbell if at least ret_doorbell_batch returns are unannounced and the TX
// doorbell if TX descriptors are unannounced, and sends the LAPIC EOI last (a
// completion posted after our last look raises a new MSI, delivered after EOI).
// Poll mode (options.poll): NO_IRQ is set before ENABLE and the program calls
// poll(); returns carry t_guest_irq = 0.
//
// Every doorbell is a VM exit (~12 us on the nested host), so returns are
// batched: one doorbell per handler run or poll batch (plus one whenever half
// the RETURN ring is unannounced, so a long batch never fills it); with
// ret_doorbell_batch > 1 fewer, and the program must call flush() (service())
// before it sleeps so returns are not left unannounced for long. On that host
// RDTSC traps too and plain guest instructions cost ~0.5-1 us each, so the hot
// path reads the TSC once per interrupt and uses string instructions for bulk
// copies, fills and compares.
//
// Transmit. send_copy() copies into a driver-owned 4 KiB TX buffer (in RAM);
// send_page() sends straight from a pool page the guest owns (a frame it
// received and kept) and returns that page to the device once the TX completes.
// TX prod is published at once; the doorbell is rung by flush()/service() or at
// the end of the interrupt handler. Slots are reclaimed when the device's TX cons
// advances (reclaim_tx(), called by the handler and service()).
//
// Floor (LNIC_REG_FLOOR_ARM). floor_arm() writes the register; the device stamps
// floor_t_sent in the RX ring header and signals the MSI. The handler records a
// floor when floor_t_sent is non-zero and differs from the last value it recorded
// (so repeated floors work whether or not the device clears floor_guest_tsc): it
// stores its entry TSC in floor_guest_tsc (release) and floor_result() reports it.
// The driver never writes floor_t_sent and never clears floor_guest_tsc.
//
// Untrusted device. Everything the device writes is checked; violations are
// printed loudly ("lnic0: DEVICE BUG: ...", first 8 of each kind) and counted in
// stats() (device_faults()). A completion with a bad address is skipped (nothing
// to give back); one with a bad length but a valid page is not delivered and its
// page is returned.
//
// Context rules: one CPU (the boot CPU) owns a Lnic. In interrupt mode every
// method except the handler must be called with interrupts disabled (the handler
// shares the ring state); in poll mode interrupts can stay off throughout. The
// callback runs in the handler (or inside poll()) and may call send_page(),
// send_copy() and return_page(), but not poll().
#pragma once

#include <stdint.h>

#include "guest/abi/boot_info.h"
#include "guest/abi/lnic.h"
#include "guest/drivers/lnic/lnic_ring.h"
#include "guest/runtime/cpu.h"
#include "guest/runtime/interrupts.h"

namespace guest {

inline constexpr uint32_t kLnicMaxNics = 2;
inline constexpr uint8_t kLnicVectorBase = 0x40;  // NIC i interrupts on 0x40 + i
inline constexpr uint32_t kLnicMaxTxBuffers = 1024;

struct LnicOptions {
  uint32_t rx_entries = 1024;  // ring sizes: powers of two, LNIC_RING_MIN..MAX
  uint32_t ret_entries = 1024;
  uint32_t tx_entries = 1024;
  uint32_t tx_buffers = 256;        // 4 KiB copy buffers for send_copy (power of two, or 0)
  bool poll = false;                // LNIC_RING_F_NO_IRQ: no MSI, program calls poll()
  uint32_t ret_doorbell_batch = 1;  // ring when >= this many returns are unannounced
  uint32_t rx_budget = 0;           // completions per interrupt; 0 = rx_entries
  // How long a full RETURN or TX ring may stay unconsumed before the driver reports
  // the device stalled (a DEVICE BUG line); 0 = the default, Linux's netdev watchdog
  // timeout (5 s). The device is a thread of the host's VMM, not hardware: on an
  // oversubscribed host (one CPU shared by the vCPU, the event loop and the pool's
  // worker, e.g. a sanitizer build in the TCG test VM) it can go unscheduled for over
  // a second, which is slow but not a bug. stats().ret_wait_max_us shows real waits.
  uint64_t stall_ms = 5000;
  uint32_t log_limit = 8;  // DEVICE BUG lines printed per kind
  bool enable = true;      // false: configure rings and MSI, leave the device stopped
  // Account TSC spent in the handler / poll() in stats().busy_cycles. Off by
  // default: RDTSC traps on the nested host (one more exit per interrupt).
  bool account_busy = false;
};

// One received frame, valid during the callback. The page stays the guest's
// after the callback only if it returns kKeep.
struct LnicFrame {
  const uint8_t* data;  // == page_gpa (identity map)
  uint32_t len;
  uint64_t page_gpa;
  uint64_t seq;          // completion seq (per NIC)
  uint64_t t_ready;      // host TSC
  uint64_t t_posted;     // host TSC
  uint64_t t_guest_irq;  // guest TSC at handler entry; 0 when polled
};

enum class LnicVerdict {
  kReturn,  // the driver returns the page now
  kKeep,    // the program keeps it: later return_page() or send_page()
};

class Lnic;
using LnicRxCallback = LnicVerdict (*)(Lnic& nic, const LnicFrame& frame, void* context);

enum class LnicError {
  kNone = 0,
  kNoDevice,   // no lnic PCI function with that index
  kBadWindow,  // MMIO window too small / not identity-mapped
  kNoPool,     // LNIC_REG_POOL_* give no usable (identity-mapped) pool window
  kBadMagic,
  kBadVersion,
  kBadOptions,      // ring size not a power of two in range, ...
  kArenaFull,       // rings + TX buffers do not fit the static arena
  kVectorBusy,      // the NIC's vector already has another handler
  kBusy,            // TX still in flight (bring_up while running)
  kConfigRejected,  // STATUS = CONFIG_ERROR; see config_error_register()
  kNotRunning,      // STATUS lacks RUNNING after ENABLE
};
const char* to_string(LnicError e);
// "RX_RING_SIZE" for LNIC_REG_RX_RING_SIZE, "?" for unknown offsets.
const char* lnic_reg_name(uint32_t offset);

// Kinds of device misbehaviour the driver detects.
enum class LnicFault : uint32_t {
  kBadCompletion,    // a completion failed check_completion (see bad_completion[])
  kRxProdBeyond,     // RX prod more than ring size ahead of our cons
  kPageTwice,        // a completion handed over a page the guest already owns
  kSeqBackwards,     // completion seq did not increase
  kRetConsBad,       // RETURN cons moved backwards or past our prod
  kTxConsBad,        // TX cons moved backwards or past our prod
  kStall,            // the device did not consume RETURN/TX entries for 1 s
  kIrqWhilePolling,  // an MSI (not a floor) arrived with NO_IRQ set
  kReentered,        // the RX ring was walked re-entrantly (interrupt with IF clear?)
  kCount,
};
const char* to_string(LnicFault f);

struct LnicStats {
  uint64_t irqs = 0;
  uint64_t irqs_empty = 0;  // handler found nothing to do (no frame, no floor)
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_batches = 0;  // handler runs / poll() calls that consumed something
  uint64_t rx_max_batch = 0;
  uint64_t rx_seq_jumps = 0;  // completion seq skipped numbers (drops, if the device counts them)
  uint64_t returns = 0;
  uint64_t ret_doorbells = 0;
  uint64_t ret_full_waits = 0;
  uint64_t ret_wait_max_us = 0;  // longest wait for the device to consume a full RETURN ring
  uint64_t returns_lost = 0;     // could not be posted (device stalled)
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_completed = 0;
  uint64_t tx_doorbells = 0;
  uint64_t tx_full = 0;  // send_* failed for lack of a slot/buffer
  uint64_t floor_armed = 0;
  uint64_t floor_irqs = 0;
  uint64_t driver_errors = 0;  // program misuse (returning a page it does not own, ...)
  uint64_t busy_cycles = 0;    // options.account_busy: TSC in the handler and in busy poll()s
  uint64_t faults[static_cast<uint32_t>(LnicFault::kCount)] = {};
  uint64_t bad_completion[lnic::kCompletionErrorKinds] = {};

  uint64_t device_faults() const {
    uint64_t n = 0;
    for (uint64_t f : faults) n += f;
    return n;
  }
};

class Lnic {
 public:
  constexpr Lnic() = default;
  Lnic(const Lnic&) = delete;
  Lnic& operator=(const Lnic&) = delete;

  // Number of lnic PCI functions on bus 0.
  static uint32_t count(const labyrinth_boot_info& info);

  // Finds lnic `index` on the PCI bus (in slot order), enables its BAR and MSI-X, and
  // attaches to it.
  LnicError probe(const labyrinth_boot_info& info, uint32_t index);
  // The register half of probe(): the device whose BAR0 is at `bar` (identity-mapped).
  LnicError attach(const labyrinth_boot_info& info, uint32_t index, uint64_t bar);
  LnicError bring_up(const LnicOptions& options, LnicRxCallback callback, void* context);
  LnicError init(const labyrinth_boot_info& info, uint32_t index, const LnicOptions& options,
                 LnicRxCallback callback, void* context) {
    const LnicError e = probe(info, index);
    return e != LnicError::kNone ? e : bring_up(options, callback, context);
  }
  // CONTROL = RESET, then waits until the device stopped (STOPPING clear; false and a
  // kStall fault after stall_ms). Pages the guest holds stay owned (return them after
  // bring_up).
  bool reset();
  // The clean unload: RX_STOP, every posted completion consumed and its page returned,
  // TX finished, the device's PAGES_HELD equal to pages_held() (pages the program kept),
  // then reset(). False (with a kStall fault) if the device did not get there in time.
  bool shutdown();

  // Receive (thread context). Consumes up to budget completions (0 = ring size).
  uint32_t poll(uint32_t budget = 0);
  bool rx_pending() const;
  // The last handler run stopped at rx_budget with completions left: no MSI may
  // come for those, so the program should poll() them. Cleared by poll().
  bool rx_backlog() const { return rx_backlog_; }

  // Publishes RETURN/TX prod and rings every doorbell that has unannounced entries.
  void flush();
  // reclaim_tx() + flush(): call before sleeping.
  void service();

  // Gives back a page the program kept (kKeep); seq is its LnicFrame's (the device
  // accepts a return only for the delivery it names). False if the guest does not
  // own it (reported) or the RETURN ring stayed full for 1 s.
  bool return_page(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq);

  // Transmit. False if len is not 1..LNIC_FRAME_MAX, the page is not owned, or no
  // slot/buffer became free within 1 s (counted in tx_full).
  bool send_copy(const void* data, uint32_t len);
  bool send_page(uint64_t page_gpa, uint64_t seq, uint32_t len, uint64_t t_guest_irq);
  uint32_t reclaim_tx();
  uint32_t tx_in_flight() const { return tx_prod_ - tx_clean_; }

  // Floor interrupts. floor_arm() is false while a floor is outstanding.
  bool floor_arm();
  bool floor_pending() const { return floor_pending_; }
  void floor_cancel() { floor_pending_ = false; }
  // The last recorded floor (false if none yet).
  bool floor_result(uint64_t* t_sent, uint64_t* guest_tsc) const;

  uint32_t status() const { return reg_read(LNIC_REG_STATUS); }
  // Guest protocol violations the device counted (LNIC_REG_VIOLATIONS, low 32 bits);
  // 0 on a device without LNIC_F_VIOLATIONS.
  uint32_t device_violations() const {
    return (features_ & LNIC_F_VIOLATIONS) != 0 ? reg_read(LNIC_REG_VIOLATIONS) : 0;
  }
  uint32_t config_error_register() const { return config_error_reg_; }
  const LnicStats& stats() const { return stats_; }
  uint32_t index() const { return index_; }
  uint8_t vector() const { return vector_; }
  const uint8_t* mac() const { return mac_; }
  uint32_t features() const { return features_; }
  uint64_t pool_base() const { return pool_base_; }
  uint64_t pool_size() const { return pool_size_; }
  uint64_t pages_held() const { return owned_.owned(); }
  bool owns(uint64_t page_gpa) const { return owned_.tracked(page_gpa) && owned_.owns(page_gpa); }
  // "lnic0: rx frames=... | ... " and, if any, the device fault counts.
  void print_stats(const char* who) const;

 private:
  // lnic_raw.h: the hostile test guest's and the host tests' back door.
  friend class LnicRaw;

  uint32_t reg_read(uint32_t offset) const;
  void reg_write(uint32_t offset, uint32_t value);
  void ring_ret_doorbell();
  void ring_tx_doorbell();
  static void irq_entry(InterruptFrame& frame, void* context);
  void on_interrupt(uint32_t entry_prod, uint64_t entry_tsc);
  bool check_floor(uint64_t entry_tsc);
  uint32_t consume(uint32_t budget, uint64_t t_guest_irq, uint32_t stamped_prod);
  void rx_one(uint32_t slot, uint64_t t_guest_irq);
  bool post_return(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq);
  void write_return(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq);
  bool ret_space();
  void refresh_ret_cons();
  bool tx_space(bool need_buffer);
  void post_tx(uint64_t buf_gpa, uint32_t len, uint64_t page_gpa, uint64_t seq,
               uint64_t t_guest_irq);
  void publish_ret();
  void end_batch();
  bool allocate(const LnicOptions& options);
  void check_thread_context();
  void fault(LnicFault kind, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  void driver_error(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  struct TxMeta {
    uint64_t page_gpa;     // pool page to return when the slot completes; 0 = copy buffer
    uint64_t seq;          // the completion that delivered it (named in the return)
    uint64_t t_guest_irq;  // returned with the page
  };

  // Device.
  uint64_t mmio_ = 0;
  uint32_t index_ = 0;
  uint8_t vector_ = 0;
  bool probed_ = false;
  bool irq_registered_ = false;
  uint8_t mac_[6] = {};
  uint32_t features_ = 0;
  uint32_t config_error_reg_ = 0;
  uint64_t pool_base_ = 0;
  uint64_t pool_size_ = 0;

  // Options in force (bring_up() resolves rx_budget and stall_ms to their values).
  LnicRxCallback callback_ = nullptr;
  void* context_ = nullptr;
  LnicOptions options_;

  // Rings (guest RAM, from the arena) and the driver's private indices.
  lnic_ring_header* rx_ = nullptr;
  lnic_ring_header* ret_ = nullptr;
  lnic_ring_header* tx_ = nullptr;
  lnic_rx_completion* rx_entries_ = nullptr;
  lnic_return* ret_entries_ = nullptr;
  lnic_tx_desc* tx_entries_ = nullptr;
  TxMeta* tx_meta_ = nullptr;
  uint8_t* tx_buf_ = nullptr;
  uint32_t rx_size_ = 0, ret_size_ = 0, tx_size_ = 0, tx_buffers_ = 0;
  uint32_t alloc_rx_ = 0, alloc_ret_ = 0, alloc_tx_ = 0, alloc_tx_buffers_ = 0;

  uint32_t rx_cons_ = 0;      // next completion to consume
  uint32_t rx_bad_prod_ = 0;  // last insane RX prod reported (report each value once)
  bool rx_seq_started_ = false;
  uint64_t rx_next_seq_ = 0;
  uint32_t ret_prod_ = 0;       // next RETURN slot to fill
  uint32_t ret_published_ = 0;  // last prod stored into the ring header
  uint32_t ret_cons_seen_ = 0;  // device's RETURN cons, last sane value
  uint32_t ret_unrung_ = 0;     // returns published/posted since the last doorbell
  uint32_t tx_prod_ = 0;
  uint32_t tx_clean_ = 0;     // first TX slot not yet reclaimed
  uint32_t tx_buf_prod_ = 0;  // copy buffers in use: tx_buf_prod_ - tx_buf_cons_
  uint32_t tx_buf_cons_ = 0;
  uint32_t tx_unrung_ = 0;

  // Floor.
  bool floor_pending_ = false;
  uint64_t floor_last_t_sent_ = 0;
  uint64_t floor_guest_tsc_ = 0;

  bool rx_backlog_ = false;
  bool in_consume_ = false;  // consume() is running: a second entry would corrupt rx_cons_
  bool warned_context_ = false;
  lnic::PageOwnership owned_;
  LnicStats stats_;
};

// Inline: the data path and the raw back door are in other files, and a doorbell or a
// RETURN entry costs as much as it did when they were one.
inline uint32_t Lnic::reg_read(uint32_t offset) const {
  return mmio_read32(mmio_ + offset);
}
inline void Lnic::reg_write(uint32_t offset, uint32_t value) {
  mmio_write32(mmio_ + offset, value);
}
// The entry at our prod, not yet published: callers decide when the device may see
// it. Relaxed single stores, like every entry access (lnic_datapath.cc).
inline void Lnic::write_return(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq) {
  lnic_return* r = &ret_entries_[lnic::ring_slot(ret_prod_, ret_size_)];
  __atomic_store_n(&r->page_gpa, page_gpa, __ATOMIC_RELAXED);
  __atomic_store_n(&r->t_guest_irq, t_guest_irq, __ATOMIC_RELAXED);
  __atomic_store_n(&r->seq, seq, __ATOMIC_RELAXED);
  __atomic_store_n(&r->reserved, uint64_t{0}, __ATOMIC_RELAXED);
  ++ret_prod_;
}

}  // namespace guest
