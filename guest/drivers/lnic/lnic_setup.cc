// guest/drivers/lnic/lnic_setup.cc — lnic driver bring-up: finding the NIC in boot
// info, carving its rings out of the driver arena, configuring and enabling it, reset.
// See lnic.h for the model and guest/abi/lnic.h for the registers.
#include "guest/drivers/lnic/lnic.h"

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

}  // namespace

// Bounded by LABYRINTH_MAX_DEVICES too: num_devices is the VMM's word, not checked.
uint32_t Lnic::count(const labyrinth_boot_info& info) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < info.num_devices && i < LABYRINTH_MAX_DEVICES; ++i) {
    if (info.devices[i].type == LABYRINTH_DEV_LNIC) ++n;
  }
  return n;
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
  // Boot info is checked before the first MMIO access: a window outside the identity
  // map would fault, and the pool window bounds every page a completion may name.
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
  // A MAC that differs from boot info is the device's bug, not the guest's problem:
  // reported, and probing goes on with the boot info's.
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
  reg_write(LNIC_REG_MSI_ADDR_LO, lnic::msi_address_lo(lapic_id()));
  reg_write(LNIC_REG_MSI_ADDR_HI, 0);
  reg_write(LNIC_REG_MSI_DATA, lnic::msi_data(vector_));

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

void Lnic::reset() {
  reg_write(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
}

}  // namespace guest
