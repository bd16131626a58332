// The lnic data path (device event loop): RX interrupt path, page returns, TX, floor.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <span>
#include <utility>

#include <spdlog/spdlog.h>

#include "allocator/measure/tsc.h"
#include "devices/lnic/lnic.h"

namespace labyrinth::devices::lnic {

namespace {
// Guest-shared ring indices: the guest is another CPU, so every access is atomic.
uint32_t load_acquire(const uint32_t& v) {
  return std::atomic_ref<const uint32_t>(v).load(std::memory_order_acquire);
}
void store_release(uint32_t& v, uint32_t x) {
  std::atomic_ref<uint32_t>(v).store(x, std::memory_order_release);
}
uint64_t load_acquire64(const uint64_t& v) {
  return std::atomic_ref<const uint64_t>(v).load(std::memory_order_acquire);
}
void store_release64(uint64_t& v, uint64_t x) {
  std::atomic_ref<uint64_t>(v).store(x, std::memory_order_release);
}
}  // namespace

std::string_view to_string(HostileKind k) {
  switch (k) {
    case HostileKind::bad_address:
      return "bad_address";
    case HostileKind::bad_length:
      return "bad_length";
    case HostileKind::page_twice:
      return "page_twice";
    case HostileKind::rx_prod_beyond_ring:
      return "rx_prod_beyond_ring";
  }
  return "unknown";
}

std::optional<HostileKind> hostile_kind_from(std::string_view name) {
  for (HostileKind k : {HostileKind::bad_address, HostileKind::bad_length, HostileKind::page_twice,
                        HostileKind::rx_prod_beyond_ring}) {
    if (to_string(k) == name) return k;
  }
  return std::nullopt;
}

Lnic::Lnic(LnicConfig cfg, boost::asio::io_context& io, alloc::PagePool& pool,
           alloc::PageCache* cache, const GuestRam& ram, std::span<MsiLine* const> lines,
           std::unique_ptr<Backend> backend)
    : cfg_(std::move(cfg)),
      label_("lnic:" + cfg_.id),
      io_(io),
      pool_(pool),
      cache_(cache),
      ram_(ram),
      msix_(lines),
      backend_(std::move(backend)),
      out_(pool.config().max_chunks * (pool.config().chunk_bytes / alloc::kPageSize)),
      inject_ticks_(cfg_.test_inject_delay_ns ? measure::TscClock::instance().from_ns(
                                                    static_cast<double>(cfg_.test_inject_delay_ns))
                                              : 0) {
  // The alloc span brackets one call with two rdtsc; what an empty bracket costs is not
  // the allocator's (measured once, median of 1001).
  std::array<uint64_t, 1001> t{};
  for (uint64_t& v : t) {
    const uint64_t a = measure::rdtsc();
    v = measure::rdtsc() - a;
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  timer_ticks_ = t[t.size() / 2];
}

Lnic::~Lnic() = default;

// A backend that starts on enable (pktgen) would generate into rings that do not exist
// yet and count every frame as a drop: it is started by activate() instead.
void Lnic::start() {
  start_requested_ = true;
  if (!backend_->starts_on_enable() || rings_) {
    backend_->start(*this);
    backend_started_ = true;
  }
}

void Lnic::stop() {
  start_requested_ = false;
  if (backend_started_) backend_->stop();
  backend_started_ = false;
  stop_floor();
}

void Lnic::pause() {
  if (paused_) return;
  flush();
  paused_ = true;
  if (backend_started_) backend_->stop();
  backend_started_ = false;
}

void Lnic::resume() {
  if (!paused_) return;
  paused_ = false;
  if (start_requested_ && (!backend_->starts_on_enable() || rings_)) {
    backend_->start(*this);
    backend_started_ = true;
  }
  if (std::exchange(ret_rung_, false)) process_returns(LNIC_RING_MAX, /*rung=*/true);
  if (std::exchange(tx_rung_, false)) process_tx();
}

// On the event loop, with a ring set enable_locked() validated on the vCPU thread.
void Lnic::activate(const RingSet& rings, uint32_t driver_features) {
  rings_ = rings;
  rx_stopped_ = false;
  ret_event_ = (driver_features & LNIC_F_RET_EVENT) != 0;
  starved_ = false;
  hostile_armed_ = activations_ < cfg_.test_hostile.size();
  hostile_hold_ = false;
  ++activations_;
  // Indices continue from what the guest zero-initialised (fresh rings: 0).
  rx_prod_ = load_acquire(rings.rx.header()->prod);
  ret_cons_ = load_acquire(rings.ret.header()->cons);
  tx_cons_ = load_acquire(rings.tx.header()->cons);
  // The driver zeroed ret_event: make it true. ret_event_last_ starts as a value
  // arm_ret_event never computes, so this first one is stored.
  if (ret_event_) {
    ret_event_last_ = ret_cons_ + rings.ret.size + 1;
    arm_ret_event(rings.ret, ret_cons_);
  }
  spdlog::debug("{}: running (rx {} / ret {} / tx {} entries)", label_, rings.rx.size,
                rings.ret.size, rings.tx.size);
  // Test only: the impossible prod needs no frame, so it comes at once, while the
  // driver's open is still on its way from ENABLE to its return (the window in which a
  // driver could turn its carrier back on after finding the device broken).
  if (hostile_armed_ && !paused_ &&
      cfg_.test_hostile[activations_ - 1] == HostileKind::rx_prod_beyond_ring &&
      rx_prod_ == load_acquire(rings.rx.header()->cons) &&
      pages_out_.load(std::memory_order_relaxed) == 0 && rings.rx.size >= 4) {
    post_hostile_prod(rings.rx);
  }
  if (start_requested_ && !backend_started_ && !paused_) {  // pktgen waited for the guest
    backend_->start(*this);
    backend_started_ = true;
  }
}

// Signal what was posted before the rings go: the guest must not miss frames it owns.
// Only then does STATUS lose STOPPING: from the guest's next read on, nothing of this
// NIC writes its rings (every writer checks rings_ on this thread). Pages the guest
// holds stay its own (their deliveries are remembered: a later ENABLE's RETURN ring
// takes them back); the device never takes a page the guest did not give.
void Lnic::deactivate() {
  flush();
  rings_.reset();
  rx_stopped_ = false;
  hostile_hold_ = false;
  hostile_armed_ = false;
  std::lock_guard lock(mu_);
  set_status(0);  // it was STOPPING: ENABLE and RX_STOP are refused until now
}

// RX_STOP: completions stop here, after the batch in hand is signalled; RETURN and TX
// doorbells are still served, so the guest can give back every page it holds.
void Lnic::stop_rx() {
  flush();
  rx_stopped_ = true;
  // A driver that rings less may have left returns unrung: the drain takes them now, and
  // ret_event (rx_stopped_) asks for a doorbell for every later one.
  if (ret_event_) process_returns();
  std::lock_guard lock(mu_);
  if (regs_.status & LNIC_STATUS_RUNNING) set_status(regs_.status | LNIC_STATUS_RX_STOPPED);
}

// Test only (HostileKind::rx_prod_beyond_ring): no completion, no page; the published
// prod is a ring and one ahead of the last one produced, and the RX vector fires.
// rx_prod_ keeps the truth; nothing is produced until the next reset.
void Lnic::post_hostile_prod(const Ring& rx) {
  store_release(rx.header()->prod, rx_prod_ + rx.size + 1);
  msix_.fire(LNIC_VEC_RX);
  metrics_.irqs.inc();
  metrics_.hostile_written.inc();
  hostile_armed_ = false;
  hostile_hold_ = true;
}

// ---------------------------------------------------------------- RX (interrupt path)

// One frame from the backend: a fresh pool page, the frame copied in, the page handed
// to the guest and a completion posted. The interrupt waits for flush(), at the end of
// the backend's batch (or kMaxPending frames), so a burst costs one MSI. Every check
// of guest-written state happens before the page is taken: a drop never leaks a page.
void Lnic::receive(std::span<const std::byte> frame, uint64_t t_ready) {
  if (!rings_ || rx_stopped_ || paused_) {  // paused: the backend is stopped, not reached
    metrics_.rx_drop_not_running.inc();
    return;
  }
  if (frame.empty() || frame.size() > LNIC_FRAME_MAX) {
    metrics_.rx_drop_oversize.inc();
    return;
  }
  const Ring& rx = rings_->rx;
  const uint32_t used = rx_prod_ - load_acquire(rx.header()->cons);
  if (used > rx.size) {  // the guest wrote a consumer index beyond what we produced
    metrics_.rx_drop_bad_ring.inc();
    metrics_.viol_bad_index.inc();
    return;
  }
  if (used == rx.size) {
    metrics_.rx_drop_ring_full.inc();
    return;
  }
  if (hostile_hold_) {  // test only: the device plays dead after its impossible index
    metrics_.rx_drop_hostile.inc();
    return;
  }
  // Test only: the guest has consumed every completion and given back every page, and
  // the ring has room for the real completion and the hostile ones after it.
  const bool hostile = hostile_armed_ && used == 0 &&
                       pages_out_.load(std::memory_order_relaxed) == 0 && rx.size >= 4;
  if (hostile && cfg_.test_hostile[activations_ - 1] == HostileKind::rx_prod_beyond_ring) {
    post_hostile_prod(rx);  // (activate() writes it already when the rings start empty)
    metrics_.rx_drop_hostile.inc();
    return;
  }

  const uint64_t a0 = measure::rdtsc();
  auto page = pool_.alloc_page(alloc::kGfpAtomicExclusive, cfg_.device_owner, cache_);
  const uint64_t a1 = measure::rdtsc();
  // Net of the empty bracket's cost; a call no longer than that records 0 (counted, so
  // the report can say how many samples the calibration swallowed).
  if (a1 - a0 > timer_ticks_) {
    latency_.alloc.record(a1 - a0 - timer_ticks_);
  } else {
    latency_.alloc.record(0);
    metrics_.alloc_net_zero.inc();
  }
  // Dry: pages may be waiting in the return ring (a polling guest rings no doorbell).
  // Reclaiming them is device work on the RX path (and, with ZeroPolicy::on_free, their
  // zeroing) — never inside alloc_page itself; it only happens when the pool is dry.
  // With LNIC_F_RET_EVENT the driver is then asked for the very next return (starved_),
  // until an allocation succeeds at the first try again.
  starved_ = !page;
  if (!page && !in_returns_) {
    process_returns();
    page = pool_.alloc_page(alloc::kGfpAtomicExclusive, cfg_.device_owner, cache_);
  }
  if (!page) {
    metrics_.rx_drop_no_page.inc();
    return;
  }
  std::memcpy(page->host, frame.data(), frame.size());
  // Cannot fail: the device owns the page it just allocated.
  (void)pool_.transfer(*page, cfg_.device_owner, cfg_.guest_owner);
  // index < out_.size(): the pool never has more than max_chunks chunks of pages.
  Delivery& d = out_[page->index];
  d.page = *page;
  d.seq = seq_;
  d.t_ready = t_ready;
  d.out = true;
  pages_out_.fetch_add(1, std::memory_order_relaxed);
  if (inject_ticks_ != 0) {  // test only: a delay of known size on the measured path
    for (const uint64_t t0 = measure::rdtsc(); measure::rdtsc() - t0 < inject_ticks_;) {
    }
    metrics_.rx_delay_injected.inc();
  }

  lnic_rx_completion c{};
  c.page_gpa = page->gpa;
  c.len = static_cast<uint32_t>(frame.size());
  c.seq = seq_++;
  c.t_ready = t_ready;
  c.t_posted = measure::rdtsc();
  std::memcpy(rx.entry(rx_prod_, sizeof c), &c, sizeof c);
  ++rx_prod_;
  if (hostile) rx_prod_ += post_hostile(rx, c);  // test only: published with the real one
  store_release(rx.header()->prod, rx_prod_);    // publishes the entries and the page contents
  metrics_.rx_frames.inc();
  metrics_.rx_bytes.inc(frame.size());

  pending_ready_[pending_++] = t_ready;
  if (pending_ == kMaxPending) flush();
}

// Test only (test_hostile): writes this activation's hostile entries after `real`, from
// rx_prod_ on (the caller publishes them with `real`, in one prod store, so the guest's
// poll sees them together); returns how many. Nothing here gives a page to two owners:
// bad_address names no page, bad_length's pages are real deliveries (the guest returns
// them as usual), and page_twice repeats `real` — its page was allocated and handed over
// once; only the ring names it twice, so the books hold one delivery and the guest's
// second return of it (a driver that missed the repeat) is a counted double return.
uint32_t Lnic::post_hostile(const Ring& rx, const lnic_rx_completion& real) {
  hostile_armed_ = false;
  std::array<lnic_rx_completion, 3> bad{};
  uint32_t n = 0;
  const uint64_t base = pool_.config().window_gpa;
  switch (cfg_.test_hostile[activations_ - 1]) {
    case HostileKind::bad_address:
      // seq_: the one the next real frame gets (the driver refuses these before seq).
      for (uint64_t gpa : {base - alloc::kPageSize, base + alloc::kPageSize / 2,
                           base + pool_.config().window_size}) {
        bad[n].page_gpa = gpa;
        bad[n].len = real.len;
        bad[n++].seq = seq_;
      }
      break;
    case HostileKind::bad_length:
      for (uint32_t len : {0u, static_cast<uint32_t>(LNIC_FRAME_MAX) + 1}) {
        auto page = pool_.alloc_page(alloc::kGfpAtomicExclusive, cfg_.device_owner, cache_);
        if (!page) break;  // the pool is dry: fewer hostile entries, none half-made
        (void)pool_.transfer(*page, cfg_.device_owner, cfg_.guest_owner);
        Delivery& d = out_[page->index];
        d.page = *page;
        d.seq = seq_;
        d.t_ready = real.t_ready;
        d.out = true;
        pages_out_.fetch_add(1, std::memory_order_relaxed);
        bad[n].page_gpa = page->gpa;
        bad[n].len = len;
        bad[n++].seq = seq_++;
      }
      break;
    case HostileKind::page_twice:
      bad[n++] = real;
      break;
    case HostileKind::rx_prod_beyond_ring:  // receive() writes it: no entry
      break;
  }
  for (uint32_t i = 0; i < n; ++i) {
    std::memcpy(rx.entry(rx_prod_ + i, sizeof bad[i]), &bad[i], sizeof bad[i]);
  }
  metrics_.hostile_written.inc(n);
  return n;
}

// End of a batch: one interrupt unless the guest polls (it sets NO_IRQ in the ring's
// flags), and the batch's host-side latency, from each frame's t_ready to now.
void Lnic::flush() {
  if (pending_ == 0 || !rings_) {
    pending_ = 0;
    return;
  }
  const uint32_t flags =
      std::atomic_ref<const uint32_t>(rings_->rx.header()->flags).load(std::memory_order_acquire);
  if ((flags & LNIC_RING_F_NO_IRQ) == 0) {
    msix_.fire(LNIC_VEC_RX);
    metrics_.irqs.inc();
  }
  latency_.host_rx.record_elapsed(std::span(pending_ready_.data(), pending_), measure::rdtsc());
  pending_ = 0;
  // A driver that rings less (LNIC_F_RET_EVENT) has returned pages of earlier batches
  // without a doorbell: take a bounded number back here, after the batch's interrupt and
  // its host_rx span (and outside every alloc span), so the pool has them before the
  // next batch needs pages. in_returns_: flush() inside a dry-path pass adds nothing.
  if (ret_event_ && !in_returns_) process_returns(LNIC_RET_PASS_MAX);
}

// ---------------------------------------------------------------- returns

void Lnic::on_return_doorbell() {
  metrics_.ret_doorbells.inc();
  if (paused_) {
    ret_rung_ = true;
    return;
  }
  process_returns(LNIC_RING_MAX, /*rung=*/true);
}

// Takes up to `max` entries of the return ring. in_returns_ stops receive() from
// re-entering it when the pool runs dry while returns are being handled.
void Lnic::process_returns(uint32_t max, bool rung) {
  if (!rings_) return;
  in_returns_ = true;
  const Ring& ret = rings_->ret;
  const uint32_t prod = load_acquire(ret.header()->prod);
  uint32_t avail = prod - ret_cons_;
  if (avail > ret.size) {  // hostile or broken producer index: act on nothing
    metrics_.viol_bad_index.inc();
    in_returns_ = false;
    return;
  }
  avail = std::min(avail, max);
  const uint64_t returned_before = metrics_.pages_returned.get();
  // Slots go back to the guest every kPublishEvery entries, not only at the end: a
  // guest waiting on a full ring (a batch of 1,024 returns) resumes after the first
  // 64 are handled, however slowly this thread gets the CPU.
  constexpr uint32_t kPublishEvery = 64;
  for (uint32_t i = 0; i < avail; ++i) {
    lnic_return r;
    std::memcpy(&r, ret.entry(ret_cons_, sizeof r), sizeof r);  // copy, then validate
    handle_return(r);
    ++ret_cons_;
    if (i % kPublishEvery == kPublishEvery - 1) store_release(ret.header()->cons, ret_cons_);
  }
  if (avail != 0) store_release(ret.header()->cons, ret_cons_);  // else: nothing to say
  if (!rung) metrics_.pages_returned_unrung.inc(metrics_.pages_returned.get() - returned_before);
  if (ret_event_) arm_ret_event(ret, prod);
  in_returns_ = false;
}

// LNIC_F_RET_EVENT: the index whose publication makes the driver ring (guest/abi/lnic.h).
// Wanting pages now (an allocation failed, or RX stopped and the drain must finish), it
// is the prod this pass saw — entries past it are the next batch; otherwise a quarter of
// the ring past cons, or that prod if more than a quarter was left unconsumed (a bounded
// pass): an event behind what is already published would never be crossed. The device
// never reads it back; the guest may scribble on it and only loses doorbells of its own,
// which cost it nothing but stranded returns (the device still takes them after each RX
// batch and when dry, and the driver rings anyway once half the ring is unconsumed).
void Lnic::arm_ret_event(const Ring& ret, uint32_t prod_seen) {
  const uint32_t left = prod_seen - ret_cons_;  // <= ret.size: the caller checked
  const bool now = starved_ || rx_stopped_;
  if (now) metrics_.ret_event_now.inc();
  const uint32_t event = ret_cons_ + (now ? left : std::max(left, ret.size / 4));
  if (event == ret_event_last_) return;  // after every RX batch: keep the guest's line clean
  ret_event_last_ = event;
  std::atomic_ref<uint32_t>(ret.header()->ret_event).store(event, std::memory_order_release);
}

void Lnic::handle_return(const lnic_return& r) {
  // Which page: pure arithmetic on the untrusted address, checked; the pool is not
  // asked to resolve it (a lookup by address cannot tell this delivery from an older one).
  const uint64_t base = pool_.config().window_gpa;
  if ((r.page_gpa & (alloc::kPageSize - 1)) != 0 || r.page_gpa < base ||
      (r.page_gpa - base) / alloc::kPageSize >= out_.size()) {
    metrics_.viol_bad_address.inc();
    return;
  }
  Delivery& d = out_[(r.page_gpa - base) / alloc::kPageSize];
  if (!d.out) {  // not with the guest: returned already, or never given
    if (d.last_returned_seq != 0 && d.last_returned_seq - 1 == r.seq) {
      metrics_.viol_double_free.inc();
    } else {
      metrics_.viol_not_owner.inc();
    }
    return;
  }
  if (r.seq != d.seq) {  // an older (or invented) delivery of a page the guest holds again
    metrics_.viol_stale.inc();
    return;
  }
  // The exact handle this NIC delivered: the pool checks owner and generation again.
  auto mine = pool_.transfer(d.page, cfg_.guest_owner, cfg_.device_owner);
  if (!mine) {  // cannot happen while the books above are right: count, never act
    metrics_.viol_not_owner.inc();
    spdlog::error("{}: page {:#x} (seq {}) refused by the pool: {}", label_, d.page.gpa, d.seq,
                  alloc::to_string(mine.error()));
    return;
  }
  d.out = false;
  d.last_returned_seq = d.seq + 1;
  if (r.t_guest_irq != 0) {
    const uint64_t host_irq = r.t_guest_irq - static_cast<uint64_t>(cfg_.tsc_offset);
    if (host_irq >= d.t_ready) {
      latency_.guest.record(host_irq - d.t_ready);
    } else {
      metrics_.guest_stamp_early.inc();
    }
  }
  // Cannot fail: the transfer above made the device the owner.
  (void)pool_.free_page(*mine, cfg_.device_owner, cache_);
  pages_out_.fetch_sub(1, std::memory_order_relaxed);
  metrics_.pages_returned.inc();
}

// ---------------------------------------------------------------- TX

void Lnic::on_tx_doorbell() {
  metrics_.tx_doorbells.inc();
  if (paused_) {
    tx_rung_ = true;
    return;
  }
  process_tx();
}

// Sends every posted descriptor; a bad one is counted and skipped, not fatal, and the
// consumer index still passes it so the guest can reuse the slot.
void Lnic::process_tx() {
  if (!rings_) return;
  const Ring& tx = rings_->tx;
  const uint32_t prod = load_acquire(tx.header()->prod);
  const uint32_t avail = prod - tx_cons_;
  if (avail > tx.size) {
    metrics_.viol_bad_index.inc();
    return;
  }
  const uint64_t pool_lo = pool_.config().window_gpa;
  const uint64_t pool_hi = pool_lo + pool_.config().window_size;
  for (uint32_t i = 0; i < avail; ++i) {
    lnic_tx_desc d;
    std::memcpy(&d, tx.entry(tx_cons_ + i, sizeof d), sizeof d);  // copy, then validate
    if (d.len == 0 || d.len > LNIC_FRAME_MAX) {
      metrics_.viol_bad_tx.inc();
      continue;
    }
    std::span<const std::byte> bytes;
    if (d.buf_gpa >= pool_lo && d.buf_gpa < pool_hi) {
      // A pool page the guest holds through this NIC; the frame must stay inside it.
      const uint64_t base = d.buf_gpa & ~(alloc::kPageSize - 1);
      auto page = pool_.lookup_gpa(base);
      const uint64_t off = d.buf_gpa - base;
      if (!page || off + d.len > alloc::kPageSize ||
          pool_.owner_of(*page).value_or(alloc::kNoOwner) != cfg_.guest_owner) {
        metrics_.viol_bad_tx.inc();
        continue;
      }
      bytes = std::span<const std::byte>(page->host + off, d.len);
    } else {  // ordinary guest RAM (the driver's own TX buffers)
      auto mem = ram_.translate(d.buf_gpa, d.len);
      if (!mem) {
        metrics_.viol_bad_tx.inc();
        continue;
      }
      bytes = *mem;
    }
    if (backend_->transmit(bytes)) {
      metrics_.tx_frames.inc();
      metrics_.tx_bytes.inc(d.len);
    } else {
      metrics_.tx_drop_backend.inc();
    }
  }
  tx_cons_ = prod;
  store_release(tx.header()->cons, tx_cons_);
  // Every slot up to cons is the guest's again: tell it, so no TX buffer waits for a
  // transmit that may never come (a driver that polls sets NO_IRQ and reclaims itself).
  const uint32_t flags =
      std::atomic_ref<const uint32_t>(tx.header()->flags).load(std::memory_order_acquire);
  if (avail != 0 && (flags & LNIC_RING_F_NO_IRQ) == 0) {
    msix_.fire(LNIC_VEC_TX);
    metrics_.tx_irqs.inc();
  }
}

// ---------------------------------------------------------------- latency floor

void Lnic::start_floor(double rate_hz, uint32_t spin_us) {
  const auto& clk = measure::TscClock::instance();
  if (floor_pacer_) {  // a step may still be posted for the old one: keep it alive
    floor_pacer_->stop();
    retired_pacers_.push_back(std::move(floor_pacer_));
  }
  floor_pacer_ = std::make_unique<Pacer>(io_, clk.from_ns(1e9 / std::max(rate_hz, 1e-3)),
                                         clk.from_ns(spin_us * 1000.0));
  floor_pacer_->start([this](uint64_t t_sched, uint64_t) {
    floor_send(t_sched);
    return true;
  });
}

void Lnic::stop_floor() {
  if (floor_pacer_) {
    floor_pacer_->stop();
    floor_collect();
  }
}

// The floor's handshake lives in the RX ring header: floor_t_sent (host TSC, ours) and
// floor_guest_tsc (the guest's TSC at its handler). Both set: one sample, then both
// cleared for the next signal. Converted to host time through the configured offset.
void Lnic::floor_collect() {
  if (!rings_) return;
  lnic_ring_header* h = rings_->rx.header();
  const uint64_t sent = load_acquire64(h->floor_t_sent);
  const uint64_t seen = load_acquire64(h->floor_guest_tsc);
  if (sent != 0 && seen != 0) {
    const uint64_t host_seen = seen - static_cast<uint64_t>(cfg_.tsc_offset);
    if (host_seen >= sent) {
      latency_.floor.record(host_seen - sent);
    } else {
      metrics_.floor_early.inc();
    }
    store_release64(h->floor_t_sent, 0);
    store_release64(h->floor_guest_tsc, 0);
  }
}

// A floor-style signal that is neither measured nor counted: the stamps are cleared
// by probe_answered(), never collected.
bool Lnic::send_probe() {
  if (!rings_) return false;
  lnic_ring_header* h = rings_->rx.header();
  store_release64(h->floor_guest_tsc, 0);
  store_release64(h->floor_t_sent, measure::rdtsc());
  msix_.fire(LNIC_VEC_RX);
  return true;
}

bool Lnic::probe_answered() {
  if (!rings_) return false;
  lnic_ring_header* h = rings_->rx.header();
  if (load_acquire64(h->floor_guest_tsc) == 0) return false;
  store_release64(h->floor_t_sent, 0);
  store_release64(h->floor_guest_tsc, 0);
  return true;
}

// One floor signal at its scheduled time (the pacer's slot, so lateness of this thread
// is part of the floor). At most one outstanding: a signal the guest has not answered
// yet is counted missed rather than overwritten.
void Lnic::floor_send(uint64_t t_sched) {
  if (!rings_) return;
  floor_collect();
  lnic_ring_header* h = rings_->rx.header();
  if (load_acquire64(h->floor_t_sent) != 0) {  // the previous one was not handled yet
    metrics_.floor_missed.inc();
    return;
  }
  store_release64(h->floor_guest_tsc, 0);
  store_release64(h->floor_t_sent, t_sched);
  msix_.fire(LNIC_VEC_RX);
  metrics_.floor_sent.inc();
}

}  // namespace labyrinth::devices::lnic
