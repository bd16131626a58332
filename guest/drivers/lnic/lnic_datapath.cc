// guest/drivers/lnic/lnic_datapath.cc — the lnic driver's data path: the interrupt
// handler and poll(), RX completions, the RETURN ring, transmit and floors.
// See lnic.h for the model and guest/abi/lnic.h for the ABI.
//
// Memory orders on the shared rings (each pairs with the device's side):
//   RX prod    load acquire   <- device's release store after writing completions
//   RX cons    store release  -> device's acquire load before reusing slots
//   RET prod   store release  -> device's acquire load before reading entries
//   RET cons   load acquire   <- device's release store after reading entries
//   TX prod    store release  -> device's acquire load before reading descriptors
//   TX cons    load acquire   <- device's release store after copying frames out
//   floor_t_sent     load acquire  <- device's release store before signalling
//   floor_guest_tsc  store release -> device's acquire load
// Entry fields are read/written with relaxed atomics: single accesses the
// compiler may neither tear nor repeat (a device rewriting an entry after our
// check cannot make us act on a value we did not check).
#include "guest/drivers/lnic/lnic.h"
#include "guest/drivers/lnic/lnic_wait.h"

#include "guest/runtime/cpu.h"
#include "guest/runtime/lapic.h"
#include "guest/runtime/tsc.h"

namespace guest {
namespace {

using lnic::kPageSize;

// Ring entries are read and written once per field (see the top of the file).
template <typename T>
T load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
template <typename T>
void store(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

// REP MOVSQ + MOVSB: no SSE in the guest, and on the nested host one string
// iteration costs about what one ordinary instruction does, so 8 bytes per
// iteration beats any loop (and libc.cc's byte loop by far).
void copy_frame(void* dst, const void* src, uint32_t len) {
  uint64_t words = len / 8, bytes = len % 8;
  asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(words) : : "memory");
  asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(bytes) : : "memory");
}

}  // namespace

// --- interrupt path --------------------------------------------------------

void Lnic::irq_entry(InterruptFrame&, void* context) {
  // First thing: the guest-observed latency endpoint. RX prod is loaded before the
  // TSC is read (LFENCE keeps RDTSC after the load), so every completion below this
  // prod was posted before entry_tsc; completions revealed by later loads are
  // stamped with a TSC read after the load that revealed them (consume()). No stamp
  // is ever earlier than its completion's t_posted.
  Lnic* nic = static_cast<Lnic*>(context);
  const uint32_t prod =
      nic->rx_ != nullptr ? __atomic_load_n(&nic->rx_->prod, __ATOMIC_ACQUIRE) : 0;
  const uint64_t entry_tsc = rdtsc_ordered();
  nic->on_interrupt(prod, entry_tsc);
}

void Lnic::on_interrupt(uint32_t entry_prod, uint64_t entry_tsc) {
  ++stats_.irqs;
  const bool floor = check_floor(entry_tsc);
  if (options_.poll) {
    // The program owns the rings; only floors are expected here.
    if (!floor) fault(LnicFault::kIrqWhilePolling, "MSI arrived although RX flags has NO_IRQ");
    lapic_eoi();
    return;
  }
  reclaim_tx();
  const uint32_t n = consume(options_.rx_budget, entry_tsc, entry_prod);
  if (n == 0 && !floor) ++stats_.irqs_empty;
  if (n == options_.rx_budget && rx_pending()) rx_backlog_ = true;
  end_batch();
  lapic_eoi();  // last: anything posted after our final look sends a new MSI
  if (options_.account_busy) stats_.busy_cycles += rdtsc() - entry_tsc;
}

// A floor counts once per floor_t_sent value: the device need not clear
// floor_guest_tsc between floors, so a changed t_sent is what marks a new one.
bool Lnic::check_floor(uint64_t entry_tsc) {
  if (rx_ == nullptr) return false;
  const uint64_t t_sent = __atomic_load_n(&rx_->floor_t_sent, __ATOMIC_ACQUIRE);
  if (t_sent == 0 || t_sent == floor_last_t_sent_) return false;
  __atomic_store_n(&rx_->floor_guest_tsc, entry_tsc, __ATOMIC_RELEASE);
  floor_last_t_sent_ = t_sent;
  floor_guest_tsc_ = entry_tsc;
  floor_pending_ = false;
  ++stats_.floor_irqs;
  return true;
}

// Walks up to `budget` completions from rx_cons_. t_guest_irq is the TSC that
// stamps completions below stamped_prod (0 when polled: nothing is stamped).
uint32_t Lnic::consume(uint32_t budget, uint64_t t_guest_irq, uint32_t stamped_prod) {
  constexpr uint32_t kPublishEvery = 64;  // let the device reuse slots mid-batch
  if (in_consume_) {
    // Entered again while a consume() is running (an interrupt taken with IF clear,
    // or the callback calling poll()): two walkers of one ring would deliver
    // completions twice and run cons past prod. Refuse, loudly.
    fault(LnicFault::kReentered, "RX ring walked re-entrantly (cons %u): refused", rx_cons_);
    return 0;
  }
  in_consume_ = true;
  uint32_t done = 0;
  while (done < budget) {
    const uint32_t prod = __atomic_load_n(&rx_->prod, __ATOMIC_ACQUIRE);
    uint32_t avail = lnic::ring_used(prod, rx_cons_);
    if (avail == 0) break;
    // Completions at or beyond stamped_prod were not visible when t_guest_irq was
    // read: this load revealed them, so they get a TSC read after it.
    uint64_t t_revealed = t_guest_irq;
    if (t_guest_irq != 0 && lnic::ring_used(prod, stamped_prod) - 1 < rx_size_) {
      t_revealed = rdtsc_ordered();
    }
    if (!lnic::ring_distance_ok(prod, rx_cons_, rx_size_)) {
      if (prod != rx_bad_prod_) {
        rx_bad_prod_ = prod;
        fault(LnicFault::kRxProdBeyond, "RX prod %u is %u entries ahead of cons %u (ring of %u)",
              prod, avail, rx_cons_, rx_size_);
      }
      break;  // never read entries the device cannot have written
    }
    if (avail > budget - done) avail = budget - done;
    for (uint32_t i = 0; i < avail; ++i) {
      const bool seen_at_stamp = static_cast<int32_t>(stamped_prod - rx_cons_) > 0;
      rx_one(lnic::ring_slot(rx_cons_, rx_size_), seen_at_stamp ? t_guest_irq : t_revealed);
      ++rx_cons_;
      if ((i + 1) % kPublishEvery == 0) __atomic_store_n(&rx_->cons, rx_cons_, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&rx_->cons, rx_cons_, __ATOMIC_RELEASE);
    done += avail;
    if (t_revealed != t_guest_irq) {
      t_guest_irq = t_revealed;  // later loads compare against what this one showed
      stamped_prod = prod;
    }
  }
  in_consume_ = false;
  if (done != 0) {
    ++stats_.rx_batches;
    if (done > stats_.rx_max_batch) stats_.rx_max_batch = done;
  }
  return done;
}

// Every field is loaded once, then checked: the device may rewrite the entry while we
// look, and what we act on must be what we checked.
void Lnic::rx_one(uint32_t slot, uint64_t t_guest_irq) {
  const lnic_rx_completion* c = &rx_entries_[slot];
  const uint64_t gpa = load(&c->page_gpa);
  const uint32_t len = load(&c->len);
  const uint32_t flags = load(&c->flags);
  const uint64_t seq = load(&c->seq);
  const uint64_t t_ready = load(&c->t_ready);
  const uint64_t t_posted = load(&c->t_posted);

  const lnic::CompletionError e = lnic::check_completion(gpa, len, flags, pool_base_, pool_size_);
  if (e != lnic::CompletionError::kNone) {
    ++stats_.bad_completion[static_cast<uint32_t>(e)];
    fault(LnicFault::kBadCompletion,
          "completion #%u (seq %lu): %s: page_gpa 0x%lx len %u flags 0x%x (pool 0x%lx+0x%lx)",
          rx_cons_, seq, lnic::to_string(e), gpa, len, flags, pool_base_, pool_size_);
    if (e != lnic::CompletionError::kFlagsNonZero) {
      // Not delivered. A real pool page is still ours and goes back.
      if (lnic::completion_page_usable(e)) {
        if (owned_.take(gpa)) {
          post_return(gpa, seq, t_guest_irq);
        } else {
          fault(LnicFault::kPageTwice,
                "completion #%u hands over page 0x%lx the guest already owns", rx_cons_, gpa);
        }
      }
      return;
    }
  }
  if (!owned_.take(gpa)) {
    fault(LnicFault::kPageTwice,
          "completion #%u (seq %lu) hands over page 0x%lx the guest already owns; skipped",
          rx_cons_, seq, gpa);
    return;
  }
  if (rx_seq_started_ && seq != rx_next_seq_) {
    if (seq > rx_next_seq_) {
      ++stats_.rx_seq_jumps;
    } else {
      fault(LnicFault::kSeqBackwards, "completion #%u seq %lu, expected >= %lu", rx_cons_, seq,
            rx_next_seq_);
    }
  }
  if (!rx_seq_started_ || seq >= rx_next_seq_) rx_next_seq_ = seq + 1;
  rx_seq_started_ = true;
  ++stats_.rx_frames;
  stats_.rx_bytes += len;

  const LnicFrame frame{
      reinterpret_cast<const uint8_t*>(gpa), len, gpa, seq, t_ready, t_posted, t_guest_irq};
  const LnicVerdict v =
      callback_ != nullptr ? callback_(*this, frame, context_) : LnicVerdict::kReturn;
  if (v == LnicVerdict::kReturn) post_return(gpa, seq, t_guest_irq);
}

// --- RETURN ring -----------------------------------------------------------

// The device's RETURN cons, believed only if it moved forward and not past our prod
// (a lying device must not make us overwrite entries it has yet to read).
void Lnic::refresh_ret_cons() {
  const uint32_t cons = __atomic_load_n(&ret_->cons, __ATOMIC_ACQUIRE);
  if (cons == ret_cons_seen_) return;
  if (!lnic::cons_advance_ok(ret_cons_seen_, cons, ret_prod_)) {
    fault(LnicFault::kRetConsBad, "RETURN cons %u: last %u, prod %u", cons, ret_cons_seen_,
          ret_prod_);
    return;
  }
  ret_cons_seen_ = cons;
}

// Room for one RETURN entry; false after stall_ms of a full ring (reported).
bool Lnic::ret_space() {
  if (lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_) return true;
  refresh_ret_cons();
  if (lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_) return true;
  // Full: make sure the device knows about everything, then wait for it.
  ++stats_.ret_full_waits;
  publish_ret();
  ring_ret_doorbell();
  const uint64_t t0 = rdtsc();
  if (lnic::wait_for_device(options_.stall_ms, [this] {
        refresh_ret_cons();
        return lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_;
      })) {
    const uint64_t waited_us = tsc_to_us(rdtsc() - t0);
    if (waited_us > stats_.ret_wait_max_us) stats_.ret_wait_max_us = waited_us;
    return true;
  }
  fault(LnicFault::kStall, "RETURN ring full for %lu ms (prod %u, device cons %u)",
        options_.stall_ms, ret_prod_, ret_cons_seen_);
  return false;
}

bool Lnic::post_return(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq) {
  if (!owned_.give(page_gpa)) {
    driver_error("return of page 0x%lx the guest does not own (refused)", page_gpa);
    return false;
  }
  if (!ret_space()) {
    ++stats_.returns_lost;
    return false;
  }
  write_return(page_gpa, seq, t_guest_irq);
  ++stats_.returns;
  // A long batch (a handler run of up to rx_budget frames) must not fill the
  // ring before its end-of-batch doorbell: tell the device at the half-way mark.
  if (++ret_unrung_ >= ret_size_ / 2) {
    publish_ret();
    ring_ret_doorbell();
  }
  return true;
}

// Publishing prod and ringing the doorbell are apart: the store is cheap, the
// doorbell a VM exit, rung once per batch (end_batch, flush).
void Lnic::publish_ret() {
  if (ret_published_ == ret_prod_) return;
  __atomic_store_n(&ret_->prod, ret_prod_, __ATOMIC_RELEASE);
  ret_published_ = ret_prod_;
}

void Lnic::ring_ret_doorbell() {
  reg_write(LNIC_REG_RET_DOORBELL, 1);
  ++stats_.ret_doorbells;
  ret_unrung_ = 0;
}

void Lnic::ring_tx_doorbell() {
  reg_write(LNIC_REG_TX_DOORBELL, 1);
  ++stats_.tx_doorbells;
  tx_unrung_ = 0;
}

void Lnic::end_batch() {
  publish_ret();
  if (ret_unrung_ >= options_.ret_doorbell_batch) ring_ret_doorbell();
  if (tx_unrung_ != 0) ring_tx_doorbell();
}

void Lnic::flush() {
  if (rx_ == nullptr) return;
  publish_ret();
  if (ret_unrung_ != 0) ring_ret_doorbell();
  if (tx_unrung_ != 0) ring_tx_doorbell();
}

void Lnic::service() {
  if (rx_ == nullptr) return;
  check_thread_context();
  reclaim_tx();
  flush();
}

bool Lnic::return_page(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq) {
  check_thread_context();
  return post_return(page_gpa, seq, t_guest_irq);
}

// --- receive (thread context) ----------------------------------------------

uint32_t Lnic::poll(uint32_t budget) {
  if (rx_ == nullptr) return 0;
  check_thread_context();
  const uint64_t t0 = options_.account_busy ? rdtsc() : 0;
  rx_backlog_ = false;
  reclaim_tx();
  const uint32_t n = consume(budget != 0 ? budget : rx_size_, 0, rx_cons_);
  end_batch();
  if (options_.account_busy && n != 0) stats_.busy_cycles += rdtsc() - t0;
  return n;
}

bool Lnic::rx_pending() const {
  return rx_ != nullptr && __atomic_load_n(&rx_->prod, __ATOMIC_ACQUIRE) != rx_cons_;
}

// --- transmit ---------------------------------------------------------------

// Frees the TX slots the device finished with: a pool page sent by send_page goes
// back to the device through RETURN, a copy buffer becomes free again.
uint32_t Lnic::reclaim_tx() {
  if (tx_ == nullptr) return 0;
  const uint32_t cons = __atomic_load_n(&tx_->cons, __ATOMIC_ACQUIRE);
  if (cons == tx_clean_) return 0;
  if (!lnic::cons_advance_ok(tx_clean_, cons, tx_prod_)) {
    fault(LnicFault::kTxConsBad, "TX cons %u: last %u, prod %u", cons, tx_clean_, tx_prod_);
    return 0;
  }
  uint32_t n = 0;
  while (tx_clean_ != cons) {
    const TxMeta& m = tx_meta_[lnic::ring_slot(tx_clean_, tx_size_)];
    if (m.page_gpa != 0) {
      post_return(m.page_gpa, m.seq, m.t_guest_irq);
    } else {
      ++tx_buf_cons_;
    }
    ++tx_clean_;
    ++n;
  }
  stats_.tx_completed += n;
  return n;
}

bool Lnic::tx_space(bool need_buffer) {
  const auto fits = [&] {
    return lnic::ring_used(tx_prod_, tx_clean_) < tx_size_ &&
           (!need_buffer || tx_buf_prod_ - tx_buf_cons_ < tx_buffers_);
  };
  if (fits()) return true;
  reclaim_tx();
  if (fits()) return true;
  if (tx_unrung_ != 0) ring_tx_doorbell();  // the device may not know what fills the ring
  if (lnic::wait_for_device(options_.stall_ms, [&] {
        reclaim_tx();
        return fits();
      })) {
    return true;
  }
  fault(LnicFault::kStall, "TX ring not consumed for %lu ms (prod %u, cons %u)", options_.stall_ms,
        tx_prod_, tx_clean_);
  return false;
}

// prod is published at once (the device may pick the frame up early); the doorbell
// waits for the batch's end.
void Lnic::post_tx(uint64_t buf_gpa, uint32_t len, uint64_t page_gpa, uint64_t seq,
                   uint64_t t_guest_irq) {
  const uint32_t slot = lnic::ring_slot(tx_prod_, tx_size_);
  lnic_tx_desc* d = &tx_entries_[slot];
  store(&d->buf_gpa, buf_gpa);
  store(&d->len, len);
  store(&d->flags, uint32_t{0});
  tx_meta_[slot] = TxMeta{page_gpa, seq, t_guest_irq};
  ++tx_prod_;
  __atomic_store_n(&tx_->prod, tx_prod_, __ATOMIC_RELEASE);
  ++tx_unrung_;
  ++stats_.tx_frames;
  stats_.tx_bytes += len;
}

bool Lnic::send_copy(const void* data, uint32_t len) {
  if (tx_ == nullptr) return false;
  if (len == 0 || len > LNIC_FRAME_MAX) {
    driver_error("send_copy: len %u not in 1..%u", len, LNIC_FRAME_MAX);
    return false;
  }
  if (tx_buffers_ == 0) {
    driver_error("send_copy: no TX buffers configured (tx_buffers = 0)");
    return false;
  }
  if (!tx_space(true)) {
    ++stats_.tx_full;
    return false;
  }
  uint8_t* buf = tx_buf_ + uint64_t{lnic::ring_slot(tx_buf_prod_, tx_buffers_)} * kPageSize;
  copy_frame(buf, data, len);
  ++tx_buf_prod_;
  post_tx(reinterpret_cast<uint64_t>(buf), len, 0, 0, 0);
  return true;
}

bool Lnic::send_page(uint64_t page_gpa, uint64_t seq, uint32_t len, uint64_t t_guest_irq) {
  if (tx_ == nullptr) return false;
  if (len == 0 || len > LNIC_FRAME_MAX) {
    driver_error("send_page: len %u not in 1..%u", len, LNIC_FRAME_MAX);
    return false;
  }
  if ((page_gpa & (kPageSize - 1)) != 0 || !lnic::page_in_pool(page_gpa, pool_base_, pool_size_) ||
      !owned_.owns(page_gpa)) {
    driver_error("send_page: 0x%lx is not a pool page the guest owns", page_gpa);
    return false;
  }
  if (!tx_space(false)) {
    ++stats_.tx_full;
    return false;
  }
  post_tx(page_gpa, len, page_gpa, seq, t_guest_irq);
  return true;
}

// --- floor -----------------------------------------------------------------

bool Lnic::floor_arm() {
  if (floor_pending_ || rx_ == nullptr) return false;
  floor_pending_ = true;
  ++stats_.floor_armed;
  reg_write(LNIC_REG_FLOOR_ARM, 1);
  return true;
}

bool Lnic::floor_result(uint64_t* t_sent, uint64_t* guest_tsc) const {
  if (floor_last_t_sent_ == 0) return false;
  *t_sent = floor_last_t_sent_;
  *guest_tsc = floor_guest_tsc_;
  return true;
}
}  // namespace guest
