// guest/drivers/lnic/lnic_setup.cc — lnic driver bring-up: finding the NIC in boot
// info, carving its rings out of the driver arena, configuring and enabling it, reset.
// See lnic.h for the model and guest/abi/lnic.h for the registers.
#include "guest/drivers/lnic/lnic.h"
#include "guest/drivers/lnic/lnic_wait.h"

#include "guest/runtime/cpu.h"
#include "guest/runtime/lapic.h"
#include "guest/runtime/print.h"

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

// PCI configuration mechanism 1, bus 0 (the VMM's only bus), function 0 of each slot.
uint32_t pci_read(uint32_t slot, uint32_t offset) {
  outl(0xCF8, 0x80000000u | slot << 11 | offset);
  return inl(0xCFC);
}
void pci_write(uint32_t slot, uint32_t offset, uint32_t value) {
  outl(0xCF8, 0x80000000u | slot << 11 | offset);
  outl(0xCFC, value);
}
constexpr uint32_t kLnicPciId = LNIC_PCI_DEVICE << 16 | LNIC_PCI_VENDOR;

// The slot of lnic `index` (in slot order), or -1.
int find_slot(uint32_t index) {
  uint32_t seen = 0;
  for (uint32_t slot = 0; slot < 32; ++slot) {
    if (pci_read(slot, 0x00) != kLnicPciId) continue;
    if (seen++ == index) return static_cast<int>(slot);
  }
  return -1;
}

}  // namespace

uint32_t Lnic::count(const labyrinth_boot_info&) {
  uint32_t n = 0;
  for (uint32_t slot = 0; slot < 32; ++slot) {
    if (pci_read(slot, 0x00) == kLnicPciId) ++n;
  }
  return n;
}

// The PCI half: find the function, read BAR0, turn on memory decoding and bus
// mastering, enable MSI-X (entries stay masked until bring_up programs them).
LnicError Lnic::probe(const labyrinth_boot_info& info, uint32_t index) {
  const int slot = index < kLnicMaxNics ? find_slot(index) : -1;
  if (slot < 0) return LnicError::kNoDevice;
  const uint32_t bar = pci_read(static_cast<uint32_t>(slot), 0x10);
  if ((bar & 0x7) != 0) {  // not a 32-bit memory BAR: not the device this driver knows
    printf("lnic%u: BAR0 0x%x is not a 32-bit memory BAR\n", index, bar);
    return LnicError::kBadWindow;
  }
  const uint32_t cap = pci_read(static_cast<uint32_t>(slot), LNIC_PCI_CAP_MSIX);
  if ((cap & 0xFF) != 0x11 || ((cap >> 16) & 0x7FF) + 1 < LNIC_MSIX_VECTORS) {
    printf("lnic%u: no MSI-X capability with %u vectors at 0x%x (0x%08x)\n", index,
           LNIC_MSIX_VECTORS, LNIC_PCI_CAP_MSIX, cap);
    return LnicError::kBadWindow;
  }
  pci_write(static_cast<uint32_t>(slot), 0x04, 0x0406);  // memory, bus master, INTx off
  pci_write(static_cast<uint32_t>(slot), LNIC_PCI_CAP_MSIX, 0x80000000u);  // MSI-X enable
  return attach(info, index, bar & ~uint32_t{0xF});
}

LnicError Lnic::attach(const labyrinth_boot_info& info, uint32_t index, uint64_t bar) {
  if (index >= kLnicMaxNics) return LnicError::kNoDevice;
  // Checked before the first MMIO access: a BAR outside the identity map would fault.
  if ((bar & (kPageSize - 1)) != 0 || bar + LNIC_BAR_SIZE > info.identity_map_end) {
    printf("lnic%u: BAR0 0x%lx unusable (identity map ends at 0x%lx)\n", index, bar,
           info.identity_map_end);
    return LnicError::kBadWindow;
  }
  index_ = index;
  mmio_ = bar;
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
  // The pool window bounds every page a completion may name: from the device, checked
  // against the identity map (a page outside it would fault when read).
  const uint64_t pool_base =
      uint64_t{reg_read(LNIC_REG_POOL_BASE_HI)} << 32 | reg_read(LNIC_REG_POOL_BASE_LO);
  const uint64_t pool_size =
      uint64_t{reg_read(LNIC_REG_POOL_SIZE_HI)} << 32 | reg_read(LNIC_REG_POOL_SIZE_LO);
  if (pool_size < kPageSize || (pool_base & (kPageSize - 1)) != 0 ||
      pool_base + pool_size < pool_base || pool_base + pool_size > info.identity_map_end) {
    printf("lnic%u: pool window 0x%lx size 0x%lx unusable (identity map ends at 0x%lx)\n", index,
           pool_base, pool_size, info.identity_map_end);
    return LnicError::kNoPool;
  }
  pool_base_ = pool_base;
  pool_size_ = pool_size;
  features_ = reg_read(LNIC_REG_FEATURES);
  const uint32_t mac_lo = reg_read(LNIC_REG_MAC_LO);
  const uint32_t mac_hi = reg_read(LNIC_REG_MAC_HI);
  for (int i = 0; i < 4; ++i) mac_[i] = static_cast<uint8_t>(mac_lo >> (8 * i));
  for (int i = 0; i < 2; ++i) mac_[4 + i] = static_cast<uint8_t>(mac_hi >> (8 * i));
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

// The arena never frees: a later bring_up reuses the rings when its options fit
// them, and an allocation that fails part-way gives back what it took.
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
  // Without TX buffers nothing is carved; g_arena only keeps the failure check below honest.
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
      (o.tx_buffers != 0 && !lnic::power_of_two(o.tx_buffers)) || o.ret_doorbell_batch == 0) {
    printf(
        "lnic%u: bad options: rings %u/%u/%u (powers of two %u..%u), tx_buffers %u "
        "(power of two <= %u or 0), ret_doorbell_batch %u (>= 1)\n",
        index_, o.rx_entries, o.ret_entries, o.tx_entries, LNIC_RING_MIN, LNIC_RING_MAX,
        o.tx_buffers, kLnicMaxTxBuffers, o.ret_doorbell_batch);
    return LnicError::kBadOptions;
  }
  // Pages in TX slots would be lost with the rings; a running device must stop before
  // its rings are zeroed under it.
  if (tx_in_flight() != 0) return LnicError::kBusy;
  if ((status() & LNIC_STATUS_RUNNING) != 0) reset();
  if (!allocate(o)) {
    printf("lnic%u: arena: %lu of %lu bytes used, options need more\n", index_, g_arena_used,
           kArenaBytes);
    return LnicError::kArenaFull;
  }

  callback_ = callback;
  context_ = context;
  options_ = o;
  options_.rx_budget = o.rx_budget != 0 ? o.rx_budget : o.rx_entries;
  options_.stall_ms = o.stall_ms != 0 ? o.stall_ms : LnicOptions{}.stall_ms;
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
  // Before ENABLE, so a polling guest never sees an MSI for a completion.
  if (options_.poll) __atomic_store_n(&rx_->flags, LNIC_RING_F_NO_IRQ, __ATOMIC_RELEASE);

  // Each ring's GPA (== its address: identity map) and size, in the register triple
  // the device validates on ENABLE.
  const auto write_ring = [this](uint32_t lo, uint32_t hi, uint32_t size_reg, const void* ring,
                                 uint32_t size) {
    const uint64_t gpa = reinterpret_cast<uint64_t>(ring);
    reg_write(lo, static_cast<uint32_t>(gpa));
    reg_write(hi, static_cast<uint32_t>(gpa >> 32));
    reg_write(size_reg, size);
  };
  write_ring(LNIC_REG_RX_RING_LO, LNIC_REG_RX_RING_HI, LNIC_REG_RX_RING_SIZE, rx_, rx_size_);
  write_ring(LNIC_REG_RET_RING_LO, LNIC_REG_RET_RING_HI, LNIC_REG_RET_RING_SIZE, ret_, ret_size_);
  write_ring(LNIC_REG_TX_RING_LO, LNIC_REG_TX_RING_HI, LNIC_REG_TX_RING_SIZE, tx_, tx_size_);

  // MSI to the boot CPU (we run on it), on this NIC's vector. Registered even in
  // poll mode: floor interrupts still arrive.
  vector_ = static_cast<uint8_t>(kLnicVectorBase + index_);
  if (!irq_registered_) {
    if (!irq_register(vector_, irq_entry, this)) return LnicError::kVectorBusy;
    irq_registered_ = true;
  }
  // The RX vector's MSI-X entry: masked while it is rewritten (the device takes the
  // message at the unmask). The TX vector stays masked and the TX ring has NO_IRQ: this
  // driver reclaims TX slots in its handler and in service() (the ABI's polling rule).
  const uint64_t entry = mmio_ + LNIC_MSIX_TABLE_OFF + LNIC_VEC_RX * 16;
  mmio_write32(entry + 12, 1);
  mmio_write32(entry, lnic::msi_address_lo(lapic_id()));
  mmio_write32(entry + 4, 0);
  mmio_write32(entry + 8, lnic::msi_data(vector_));
  mmio_write32(entry + 12, 0);
  __atomic_store_n(&tx_->flags, LNIC_RING_F_NO_IRQ, __ATOMIC_RELEASE);

  if (!o.enable) return LnicError::kNone;
  // The device validates the whole configuration on ENABLE and says in STATUS
  // whether it took it; CONFIG_ERROR names the first register it refused.
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

// STOPPING until the device has stopped writing the rings (guest/abi/lnic.h): only
// then may they be zeroed or reused.
bool Lnic::reset() {
  reg_write(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
  if (lnic::wait_for_device(options_.stall_ms != 0 ? options_.stall_ms : LnicOptions{}.stall_ms,
                            [this] { return (status() & LNIC_STATUS_STOPPING) == 0; })) {
    return true;
  }
  fault(LnicFault::kStall, "still STOPPING %lu ms after RESET", options_.stall_ms);
  return false;
}

// The unload path (guest/abi/lnic.h, "Stop, drain and reset"): no new completions, every
// one posted consumed and its page given back (the callback sees the last frames and
// may keep pages: those stay held), TX finished, and the device's count of held pages
// equal to the driver's before the reset.
bool Lnic::shutdown() {
  const uint64_t stall = options_.stall_ms != 0 ? options_.stall_ms : LnicOptions{}.stall_ms;
  reg_write(LNIC_REG_CONTROL, LNIC_CTRL_RX_STOP);
  if (!lnic::wait_for_device(stall, [this] { return (status() & LNIC_STATUS_RX_STOPPED) != 0; })) {
    fault(LnicFault::kStall, "RX_STOPPED not reported %lu ms after RX_STOP", stall);
    return false;
  }
  while (poll() != 0) {
  }
  service();
  const bool drained = lnic::wait_for_device(stall, [this] {
    reclaim_tx();
    flush();
    return tx_in_flight() == 0 && reg_read(LNIC_REG_PAGES_HELD) == owned_.owned();
  });
  if (!drained) {
    fault(LnicFault::kStall, "PAGES_HELD %u, the driver holds %lu, %u TX in flight after %lu ms",
          reg_read(LNIC_REG_PAGES_HELD), owned_.owned(), tx_in_flight(), stall);
  }
  return reset() && drained;
}

}  // namespace guest
