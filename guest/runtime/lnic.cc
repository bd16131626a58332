// lnic guest driver. See lnic.h for the model and guest/abi/lnic.h for the ABI.
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
#include "guest/runtime/lnic.h"

#include <stdarg.h>

#include "guest/runtime/cpu.h"
#include "guest/runtime/lapic.h"
#include "guest/runtime/print.h"
#include "guest/runtime/serial.h"
#include "guest/runtime/tsc.h"

namespace guest {
namespace {

using lnic::kPageSize;

// Rings and TX buffers come from here, bump-allocated, never freed. Default
// options need ~1.2 MiB per NIC. It lives in .noinit (linker.ld): not cleared at
// boot, because first touches of guest pages are expensive on the nested host;
// bring_up() zeroes the rings it carves out, TX buffers need no clearing.
constexpr uint64_t kArenaBytes = 6ull << 20;
alignas(4096) __attribute__((section(".noinit.lnic_arena"))) uint8_t g_arena[kArenaBytes];
uint64_t g_arena_used = 0;

// Page-ownership bitmaps: 1 bit per pool page, up to 4 GiB of pool window; also
// .noinit, probe() clears the words the pool window needs.
constexpr uint64_t kOwnedWords = (4ull << 30) / kPageSize / 64;
alignas(4096)
    __attribute__((section(".noinit.lnic_owned"))) uint64_t g_owned_bits[kLnicMaxNics][kOwnedWords];

void* arena_alloc(uint64_t bytes) {
  bytes = (bytes + kPageSize - 1) & ~(kPageSize - 1);
  if (bytes > kArenaBytes - g_arena_used) return nullptr;
  void* p = g_arena + g_arena_used;
  g_arena_used += bytes;
  return p;
}

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

bool power_of_two(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

const char* to_string(LnicError e) {
  switch (e) {
    case LnicError::kNone:
      return "ok";
    case LnicError::kNoDevice:
      return "no lnic found in boot info";
    case LnicError::kBadWindow:
      return "lnic MMIO window unusable (size or not identity-mapped)";
    case LnicError::kNoPool:
      return "boot info has no usable page-pool window";
    case LnicError::kBadMagic:
      return "MAGIC register is not LNIC_MAGIC";
    case LnicError::kBadVersion:
      return "VERSION register is not LNIC_VERSION";
    case LnicError::kBadOptions:
      return "invalid driver options (ring sizes, tx_buffers)";
    case LnicError::kArenaFull:
      return "rings and TX buffers do not fit the driver arena";
    case LnicError::kVectorBusy:
      return "the NIC's interrupt vector has another handler";
    case LnicError::kBusy:
      return "TX frames still in flight";
    case LnicError::kConfigRejected:
      return "device reported LNIC_STATUS_CONFIG_ERROR";
    case LnicError::kNotRunning:
      return "device not RUNNING after ENABLE";
  }
  return "?";
}

const char* to_string(LnicFault f) {
  switch (f) {
    case LnicFault::kBadCompletion:
      return "bad completion";
    case LnicFault::kRxProdBeyond:
      return "RX prod beyond ring";
    case LnicFault::kPageTwice:
      return "page delivered twice";
    case LnicFault::kSeqBackwards:
      return "completion seq backwards";
    case LnicFault::kRetConsBad:
      return "RETURN cons insane";
    case LnicFault::kTxConsBad:
      return "TX cons insane";
    case LnicFault::kStall:
      return "ring stalled";
    case LnicFault::kMacMismatch:
      return "MAC mismatch";
    case LnicFault::kIrqWhilePolling:
      return "MSI despite NO_IRQ";
    case LnicFault::kReentered:
      return "RX walked re-entrantly";
    case LnicFault::kCount:
      break;
  }
  return "?";
}

const char* lnic_reg_name(uint32_t offset) {
  switch (offset) {
    case LNIC_REG_MAGIC:
      return "MAGIC";
    case LNIC_REG_VERSION:
      return "VERSION";
    case LNIC_REG_FEATURES:
      return "FEATURES";
    case LNIC_REG_STATUS:
      return "STATUS";
    case LNIC_REG_CONTROL:
      return "CONTROL";
    case LNIC_REG_CONFIG_ERROR:
      return "CONFIG_ERROR";
    case LNIC_REG_MAC_LO:
      return "MAC_LO";
    case LNIC_REG_MAC_HI:
      return "MAC_HI";
    case LNIC_REG_RX_RING_LO:
      return "RX_RING_LO";
    case LNIC_REG_RX_RING_HI:
      return "RX_RING_HI";
    case LNIC_REG_RX_RING_SIZE:
      return "RX_RING_SIZE";
    case LNIC_REG_RET_RING_LO:
      return "RET_RING_LO";
    case LNIC_REG_RET_RING_HI:
      return "RET_RING_HI";
    case LNIC_REG_RET_RING_SIZE:
      return "RET_RING_SIZE";
    case LNIC_REG_TX_RING_LO:
      return "TX_RING_LO";
    case LNIC_REG_TX_RING_HI:
      return "TX_RING_HI";
    case LNIC_REG_TX_RING_SIZE:
      return "TX_RING_SIZE";
    case LNIC_REG_MSI_ADDR_LO:
      return "MSI_ADDR_LO";
    case LNIC_REG_MSI_ADDR_HI:
      return "MSI_ADDR_HI";
    case LNIC_REG_MSI_DATA:
      return "MSI_DATA";
    case LNIC_REG_VIOLATIONS:
      return "VIOLATIONS";
    case LNIC_REG_RET_DOORBELL:
      return "RET_DOORBELL";
    case LNIC_REG_TX_DOORBELL:
      return "TX_DOORBELL";
    case LNIC_REG_FLOOR_ARM:
      return "FLOOR_ARM";
    default:
      return "?";
  }
}

uint32_t Lnic::count(const labyrinth_boot_info& info) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < info.num_devices && i < LABYRINTH_MAX_DEVICES; ++i) {
    if (info.devices[i].type == LABYRINTH_DEV_LNIC) ++n;
  }
  return n;
}

uint32_t Lnic::reg_read(uint32_t offset) const {
  return mmio_read32(mmio_ + offset);
}
void Lnic::reg_write(uint32_t offset, uint32_t value) {
  mmio_write32(mmio_ + offset, value);
}

LnicError Lnic::probe(const labyrinth_boot_info& info, uint32_t index) {
  const labyrinth_device_desc* desc = nullptr;
  uint32_t seen = 0;
  for (uint32_t i = 0; i < info.num_devices && i < LABYRINTH_MAX_DEVICES; ++i) {
    if (info.devices[i].type != LABYRINTH_DEV_LNIC) continue;
    if (seen++ == index) {
      desc = &info.devices[i];
      break;
    }
  }
  if (desc == nullptr || index >= kLnicMaxNics) return LnicError::kNoDevice;
  if (desc->mmio_size < LNIC_MMIO_SIZE || (desc->mmio_base & (kPageSize - 1)) != 0 ||
      desc->mmio_base + LNIC_MMIO_SIZE > info.identity_map_end) {
    printf("lnic%u: MMIO window 0x%lx size 0x%lx unusable (identity map ends at 0x%lx)\n", index,
           desc->mmio_base, desc->mmio_size, info.identity_map_end);
    return LnicError::kBadWindow;
  }
  if (info.pool_window_size < kPageSize || (info.pool_window_gpa & (kPageSize - 1)) != 0 ||
      info.pool_window_gpa + info.pool_window_size > info.identity_map_end ||
      info.pool_window_gpa + info.pool_window_size < info.pool_window_gpa) {
    printf("lnic%u: pool window 0x%lx size 0x%lx unusable (identity map ends at 0x%lx)\n", index,
           info.pool_window_gpa, info.pool_window_size, info.identity_map_end);
    return LnicError::kNoPool;
  }
  index_ = index;
  mmio_ = desc->mmio_base;
  pool_base_ = info.pool_window_gpa;
  pool_size_ = info.pool_window_size;
  for (int i = 0; i < 6; ++i) mac_[i] = desc->mac[i];

  const uint32_t magic = reg_read(LNIC_REG_MAGIC);
  if (magic != LNIC_MAGIC) {
    printf("lnic%u: MAGIC at 0x%lx reads 0x%08x, expected 0x%08x\n", index, mmio_, magic,
           LNIC_MAGIC);
    return LnicError::kBadMagic;
  }
  const uint32_t version = reg_read(LNIC_REG_VERSION);
  if (version != LNIC_VERSION) {
    printf("lnic%u: VERSION %u, this driver speaks %u\n", index, version, LNIC_VERSION);
    return LnicError::kBadVersion;
  }
  features_ = reg_read(LNIC_REG_FEATURES);
  const uint32_t mac_lo = reg_read(LNIC_REG_MAC_LO);
  const uint32_t mac_hi = reg_read(LNIC_REG_MAC_HI);
  const uint8_t reg_mac[6] = {
      static_cast<uint8_t>(mac_lo),       static_cast<uint8_t>(mac_lo >> 8),
      static_cast<uint8_t>(mac_lo >> 16), static_cast<uint8_t>(mac_lo >> 24),
      static_cast<uint8_t>(mac_hi),       static_cast<uint8_t>(mac_hi >> 8)};
  for (int i = 0; i < 6; ++i) {
    if (reg_mac[i] != mac_[i]) {
      fault(LnicFault::kMacMismatch,
            "MAC registers %02x:%02x:%02x:%02x:%02x:%02x differ from boot info "
            "%02x:%02x:%02x:%02x:%02x:%02x",
            reg_mac[0], reg_mac[1], reg_mac[2], reg_mac[3], reg_mac[4], reg_mac[5], mac_[0],
            mac_[1], mac_[2], mac_[3], mac_[4], mac_[5]);
      break;
    }
  }
  if (!probed_) {
    // A new driver object starts owning nothing (the bitmap is static storage).
    const uint64_t pool_words = (pool_size_ / kPageSize + 63) / 64;
    __builtin_memset(g_owned_bits[index], 0,
                     (pool_words < kOwnedWords ? pool_words : kOwnedWords) * sizeof(uint64_t));
    owned_ = lnic::PageOwnership(g_owned_bits[index], kOwnedWords, pool_base_, pool_size_);
    if (pool_size_ / kPageSize > kOwnedWords * 64) {
      printf("lnic%u: pool window larger than 4 GiB: pages above are not ownership-checked\n",
             index);
    }
  }
  probed_ = true;
  return LnicError::kNone;
}

bool Lnic::allocate(const LnicOptions& o) {
  const uint32_t bufs = o.tx_buffers;
  if (rx_ != nullptr && o.rx_entries <= alloc_rx_ && o.ret_entries <= alloc_ret_ &&
      o.tx_entries <= alloc_tx_ && bufs <= alloc_tx_buffers_) {
    return true;  // reuse what an earlier bring_up carved out
  }
  const uint64_t before = g_arena_used;
  void* rx = arena_alloc(lnic::ring_bytes(o.rx_entries, sizeof(lnic_rx_completion)));
  void* ret = arena_alloc(lnic::ring_bytes(o.ret_entries, sizeof(lnic_return)));
  void* tx = arena_alloc(lnic::ring_bytes(o.tx_entries, sizeof(lnic_tx_desc)));
  void* meta = arena_alloc(uint64_t{o.tx_entries} * sizeof(TxMeta));
  void* buf = bufs != 0 ? arena_alloc(uint64_t{bufs} * kPageSize) : g_arena;
  if (rx == nullptr || ret == nullptr || tx == nullptr || meta == nullptr || buf == nullptr) {
    g_arena_used = before;
    return false;
  }
  rx_ = static_cast<lnic_ring_header*>(rx);
  ret_ = static_cast<lnic_ring_header*>(ret);
  tx_ = static_cast<lnic_ring_header*>(tx);
  tx_meta_ = static_cast<TxMeta*>(meta);
  tx_buf_ = bufs != 0 ? static_cast<uint8_t*>(buf) : nullptr;
  alloc_rx_ = o.rx_entries;
  alloc_ret_ = o.ret_entries;
  alloc_tx_ = o.tx_entries;
  alloc_tx_buffers_ = bufs;
  return true;
}

LnicError Lnic::bring_up(const LnicOptions& o, LnicRxCallback callback, void* context) {
  if (!probed_) return LnicError::kNoDevice;
  if (!lnic::ring_size_valid(o.rx_entries) || !lnic::ring_size_valid(o.ret_entries) ||
      !lnic::ring_size_valid(o.tx_entries) || o.tx_buffers > kLnicMaxTxBuffers ||
      (o.tx_buffers != 0 && !power_of_two(o.tx_buffers)) || o.ret_doorbell_batch == 0) {
    printf(
        "lnic%u: bad options: rings %u/%u/%u (powers of two %u..%u), tx_buffers %u "
        "(power of two <= %u or 0), ret_doorbell_batch %u (>= 1)\n",
        index_, o.rx_entries, o.ret_entries, o.tx_entries, LNIC_RING_MIN, LNIC_RING_MAX,
        o.tx_buffers, kLnicMaxTxBuffers, o.ret_doorbell_batch);
    return LnicError::kBadOptions;
  }
  if (tx_in_flight() != 0) return LnicError::kBusy;
  if ((status() & LNIC_STATUS_RUNNING) != 0) reset();
  if (!allocate(o)) {
    printf("lnic%u: arena: %lu of %lu bytes used, options need more\n", index_, g_arena_used,
           kArenaBytes);
    return LnicError::kArenaFull;
  }

  callback_ = callback;
  context_ = context;
  poll_mode_ = o.poll;
  ret_doorbell_batch_ = o.ret_doorbell_batch;
  rx_budget_ = o.rx_budget != 0 ? o.rx_budget : o.rx_entries;
  stall_ms_ = o.stall_ms != 0 ? o.stall_ms : LnicOptions{}.stall_ms;
  log_limit_ = o.log_limit;
  account_busy_ = o.account_busy;
  rx_size_ = o.rx_entries;
  ret_size_ = o.ret_entries;
  tx_size_ = o.tx_entries;
  tx_buffers_ = o.tx_buffers;
  rx_entries_ = reinterpret_cast<lnic_rx_completion*>(rx_ + 1);
  ret_entries_ = reinterpret_cast<lnic_return*>(ret_ + 1);
  tx_entries_ = reinterpret_cast<lnic_tx_desc*>(tx_ + 1);

  // Zeroed rings, fresh indices (the device starts from the zeroed headers).
  __builtin_memset(rx_, 0, lnic::ring_bytes(rx_size_, sizeof(lnic_rx_completion)));
  __builtin_memset(ret_, 0, lnic::ring_bytes(ret_size_, sizeof(lnic_return)));
  __builtin_memset(tx_, 0, lnic::ring_bytes(tx_size_, sizeof(lnic_tx_desc)));
  rx_cons_ = rx_bad_prod_ = 0;
  rx_seq_started_ = false;
  ret_prod_ = ret_published_ = ret_cons_seen_ = ret_unrung_ = 0;
  tx_prod_ = tx_clean_ = tx_buf_prod_ = tx_buf_cons_ = tx_unrung_ = 0;
  floor_pending_ = false;
  floor_last_t_sent_ = 0;
  if (poll_mode_) __atomic_store_n(&rx_->flags, LNIC_RING_F_NO_IRQ, __ATOMIC_RELEASE);

  const auto lo = [](const void* p) {
    return static_cast<uint32_t>(reinterpret_cast<uint64_t>(p));
  };
  const auto hi = [](const void* p) {
    return static_cast<uint32_t>(reinterpret_cast<uint64_t>(p) >> 32);
  };
  reg_write(LNIC_REG_RX_RING_LO, lo(rx_));
  reg_write(LNIC_REG_RX_RING_HI, hi(rx_));
  reg_write(LNIC_REG_RX_RING_SIZE, rx_size_);
  reg_write(LNIC_REG_RET_RING_LO, lo(ret_));
  reg_write(LNIC_REG_RET_RING_HI, hi(ret_));
  reg_write(LNIC_REG_RET_RING_SIZE, ret_size_);
  reg_write(LNIC_REG_TX_RING_LO, lo(tx_));
  reg_write(LNIC_REG_TX_RING_HI, hi(tx_));
  reg_write(LNIC_REG_TX_RING_SIZE, tx_size_);

  // MSI to the boot CPU (we run on it), on this NIC's vector. Registered even in
  // poll mode: floor interrupts still arrive.
  vector_ = static_cast<uint8_t>(kLnicVectorBase + index_);
  if (!irq_registered_) {
    if (!irq_register(vector_, irq_entry, this)) return LnicError::kVectorBusy;
    irq_registered_ = true;
  }
  reg_write(LNIC_REG_MSI_ADDR_LO, lnic::msi_address_lo(lapic_id()));
  reg_write(LNIC_REG_MSI_ADDR_HI, 0);
  reg_write(LNIC_REG_MSI_DATA, lnic::msi_data(vector_));

  if (!o.enable) return LnicError::kNone;
  reg_write(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  const uint32_t st = status();
  if ((st & LNIC_STATUS_CONFIG_ERROR) != 0) {
    config_error_reg_ = reg_read(LNIC_REG_CONFIG_ERROR);
    printf("lnic%u: device rejected the configuration: register 0x%03x (%s)\n", index_,
           config_error_reg_, lnic_reg_name(config_error_reg_));
    return LnicError::kConfigRejected;
  }
  if ((st & LNIC_STATUS_RUNNING) == 0) {
    printf("lnic%u: STATUS 0x%x after ENABLE (expected RUNNING)\n", index_, st);
    return LnicError::kNotRunning;
  }
  return LnicError::kNone;
}

void Lnic::reset() {
  reg_write(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
}

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
  if (poll_mode_) {
    // The program owns the rings; only floors are expected here.
    if (!floor) fault(LnicFault::kIrqWhilePolling, "MSI arrived although RX flags has NO_IRQ");
    lapic_eoi();
    return;
  }
  reclaim_tx();
  const uint32_t n = consume(rx_budget_, entry_tsc, entry_prod);
  if (n == 0 && !floor) ++stats_.irqs_empty;
  if (n == rx_budget_ && rx_pending()) rx_backlog_ = true;
  end_batch();
  lapic_eoi();  // last: anything posted after our final look sends a new MSI
  if (account_busy_) stats_.busy_cycles += rdtsc() - entry_tsc;
}

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

bool Lnic::ret_space() {
  if (lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_) return true;
  refresh_ret_cons();
  if (lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_) return true;
  // Full: make sure the device knows about everything, then wait for it.
  ++stats_.ret_full_waits;
  publish_ret();
  ring_ret_doorbell();
  const uint64_t t0 = rdtsc();
  const uint64_t deadline = tsc_deadline_ms(stall_ms_);
  for (uint32_t spin = 1;; ++spin) {
    refresh_ret_cons();
    if (lnic::ring_used(ret_prod_, ret_cons_seen_) < ret_size_) {
      const uint64_t waited_us = tsc_to_us(rdtsc() - t0);
      if (waited_us > stats_.ret_wait_max_us) stats_.ret_wait_max_us = waited_us;
      return true;
    }
    pause();
    if (spin % 64 == 0 && tsc_passed(deadline)) break;  // RDTSC is an exit: not every spin
  }
  fault(LnicFault::kStall, "RETURN ring full for %lu ms (prod %u, device cons %u)", stall_ms_,
        ret_prod_, ret_cons_seen_);
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
  lnic_return* r = &ret_entries_[lnic::ring_slot(ret_prod_, ret_size_)];
  store(&r->page_gpa, page_gpa);
  store(&r->t_guest_irq, t_guest_irq);
  store(&r->seq, seq);
  store(&r->reserved, uint64_t{0});
  ++ret_prod_;
  ++stats_.returns;
  // A long batch (a handler run of up to rx_budget frames) must not fill the
  // ring before its end-of-batch doorbell: tell the device at the half-way mark.
  if (++ret_unrung_ >= ret_size_ / 2) {
    publish_ret();
    ring_ret_doorbell();
  }
  return true;
}

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
  if (ret_unrung_ >= ret_doorbell_batch_) ring_ret_doorbell();
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

void Lnic::ret_post_raw(uint64_t page_gpa, uint64_t seq, uint64_t t_guest_irq, bool keep_in_books) {
  // Only an exact, owned page address gives the page back in our books.
  if (!keep_in_books && (page_gpa & (kPageSize - 1)) == 0 && owned_.tracked(page_gpa) &&
      owned_.owns(page_gpa)) {
    owned_.give(page_gpa);
  }
  lnic_return* r = &ret_entries_[lnic::ring_slot(ret_prod_, ret_size_)];
  store(&r->page_gpa, page_gpa);
  store(&r->t_guest_irq, t_guest_irq);
  store(&r->seq, seq);
  store(&r->reserved, uint64_t{0});
  ++ret_prod_;
  ++ret_unrung_;
  publish_ret();
}

// --- receive (thread context) ----------------------------------------------

uint32_t Lnic::poll(uint32_t budget) {
  if (rx_ == nullptr) return 0;
  check_thread_context();
  const uint64_t t0 = account_busy_ ? rdtsc() : 0;
  rx_backlog_ = false;
  reclaim_tx();
  const uint32_t n = consume(budget != 0 ? budget : rx_size_, 0, rx_cons_);
  end_batch();
  if (account_busy_ && n != 0) stats_.busy_cycles += rdtsc() - t0;
  return n;
}

bool Lnic::rx_pending() const {
  return rx_ != nullptr && __atomic_load_n(&rx_->prod, __ATOMIC_ACQUIRE) != rx_cons_;
}

// --- transmit ---------------------------------------------------------------

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
  if (tx_unrung_ != 0) ring_tx_doorbell();
  const uint64_t deadline = tsc_deadline_ms(stall_ms_);
  for (uint32_t spin = 1;; ++spin) {
    reclaim_tx();
    if (fits()) return true;
    pause();
    if (spin % 64 == 0 && tsc_passed(deadline)) break;
  }
  fault(LnicFault::kStall, "TX ring not consumed for %lu ms (prod %u, cons %u)", stall_ms_,
        tx_prod_, tx_clean_);
  return false;
}

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

// --- reporting --------------------------------------------------------------

void Lnic::check_thread_context() {
  if (!poll_mode_ && interrupts_enabled() && !warned_context_) {
    warned_context_ = true;
    driver_error("called with interrupts enabled in interrupt mode (races the handler)");
  }
}

void Lnic::fault(LnicFault kind, const char* fmt, ...) {
  const uint64_t n = ++stats_.faults[static_cast<uint32_t>(kind)];
  if (n > log_limit_) return;
  // The handler may interrupt code that holds the serial lock: skip the line
  // then (it is still counted) rather than deadlock.
  if (serial_lock().held_by_me()) return;
  char line[200];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  printf("lnic%u: DEVICE BUG (%s)%s: %s\n", index_, to_string(kind),
         n == log_limit_ ? ", further ones only counted" : "", line);
}

void Lnic::driver_error(const char* fmt, ...) {
  const uint64_t n = ++stats_.driver_errors;
  if (n > log_limit_ || serial_lock().held_by_me()) return;
  char line[200];
  va_list args;
  va_start(args, fmt);
  vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  printf("lnic%u: driver misuse: %s\n", index_, line);
}

void Lnic::print_stats(const char* who) const {
  const LnicStats& s = stats_;
  printf(
      "%s: lnic%u rx frames=%lu bytes=%lu batches=%lu max_batch=%lu irqs=%lu empty_irqs=%lu "
      "seq_jumps=%lu\n",
      who, index_, s.rx_frames, s.rx_bytes, s.rx_batches, s.rx_max_batch, s.irqs, s.irqs_empty,
      s.rx_seq_jumps);
  if (account_busy_) {
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
