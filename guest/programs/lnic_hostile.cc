// lnic_hostile: a misbehaving driver. Proves the device treats everything the
// guest writes as untrusted (guest/abi/lnic.h) and keeps working afterwards.
//
// Checks, in this order, each enabled by a flag (all default 1):
//   config=1    before ENABLE: absurd ring configurations (size 0 / not a power of
//               two / above MAX / below MIN, misaligned, inside the pool window, in
//               the MMIO gap, at 1 TiB, straddling the end of RAM). Each must give
//               STATUS = CONFIG_ERROR; then the correct configuration must give
//               RUNNING. (A different CONFIG_ERROR register than the one we broke
//               is reported as a note, not a failure.) Then BAR0 abuse (writes
//               outside the register file, to the PBA, past the MSI-X table) and a
//               reset storm on the running device (it must end stopped).
//   bogus=1     RETURN entries with addresses below / above the pool window, 0,
//               2^64 - 4 KiB, misaligned (a page we own + 8), inside guest RAM
//   double=1    the same page returned twice in one batch
//   stale=1     a page we hold returned naming another delivery (a seq it did not
//               come with): refused, the page stays ours and is returned properly
//   unowned=1   pages we do not hold, named by no delivery (seq ~0): a pool page we
//               have just given back properly, and the pool window's last page
//   indices=1   RETURN prod far beyond cons + size and just behind cons, RX cons far
//               beyond prod, TX prod far beyond cons + size (each followed by its
//               doorbell; once LNIC_REG_VIOLATIONS shows the device counted it, restored
//               to the real value)
//   flood=1     flood_count RETURN doorbells, then flood_count TX doorbells
// Between checks the device must stay RUNNING and keep delivering frames; at the
// end the guest receives `frames` more frames normally.
//
// Command line: the flags above, flood_count=N (default 2000), frames=N (default
// 1000), wait_ms=N (time allowed for expected frames, default 10000), settle_ms=N
// (normal traffic between checks, default 50), + driver keys (lnic_common.h).
// Runs in poll mode with interrupts off (the checks need precise control).
//
// Last line: lnic_hostile: frames=N checks=C failed=F device_faults=D
// Exit 0 if every check passed, `frames` frames arrived and the driver saw no
// device fault.
#include "guest/drivers/lnic/lnic_raw.h"
#include "guest/programs/lnic_common.h"

namespace {

constexpr const char* kWho = "lnic_hostile";
constexpr const char* kKeys[] = {"config",  "bogus",   "double",   "stale",
                                 "unowned", "indices", "flood",    "flood_count",
                                 "frames",  "wait_ms", "settle_ms"};
constexpr uint32_t kMaxKept = 8;

struct State {
  uint64_t frames = 0;
  uint32_t keep_wanted = 0;  // keep the next N pages (kKeep)
  uint32_t kept = 0;
  uint64_t kept_pages[kMaxKept] = {};
  uint64_t kept_seqs[kMaxKept] = {};  // the completion that delivered each
};

constinit State g_state;
constinit guest::Lnic g_nic;
constinit guest::LnicRaw g_raw(g_nic);   // the misbehaviour goes through here
alignas(4096) uint8_t g_ram_page[4096];  // a guest RAM page (not pool) to "return"

uint64_t g_wait_ms = 10000;
uint64_t g_settle_ms = 50;
uint32_t g_checks = 0;
uint32_t g_failed = 0;

guest::LnicVerdict on_frame(guest::Lnic&, const guest::LnicFrame& f, void* context) {
  State& s = *static_cast<State*>(context);
  ++s.frames;
  if (s.keep_wanted != 0 && s.kept < kMaxKept) {
    --s.keep_wanted;
    s.kept_seqs[s.kept] = f.seq;
    s.kept_pages[s.kept++] = f.page_gpa;
    return guest::LnicVerdict::kKeep;
  }
  return guest::LnicVerdict::kReturn;
}

// Polls until `n` more frames arrived or wait_ms passed.
bool receive(uint64_t n) {
  const uint64_t target = g_state.frames + n;
  const uint64_t deadline = guest::tsc_deadline_ms(g_wait_ms);
  while (g_state.frames < target) {
    if (g_nic.poll(64) == 0) {
      if (guest::tsc_passed(deadline)) return false;
      guest::pause();
    }
  }
  g_nic.flush();
  return true;
}

// Normal operation for settle_ms.
void settle() {
  const uint64_t deadline = guest::tsc_deadline_ms(g_settle_ms);
  while (!guest::tsc_passed(deadline)) {
    if (g_nic.poll(64) == 0) guest::pause();
  }
  g_nic.flush();
}

void verdict(const char* check, bool pass, const char* detail) {
  ++g_checks;
  if (!pass) ++g_failed;
  guest::printf("%s: [%s] %s: %s\n", kWho, check, pass ? "ok" : "FAIL", detail);
}

// After a check: the device must still run and deliver frames.
bool alive(const char* check) {
  char buf[160];
  const uint32_t st = g_nic.status();
  if ((st & LNIC_STATUS_RUNNING) == 0 || (st & LNIC_STATUS_CONFIG_ERROR) != 0) {
    guest::snprintf(buf, sizeof(buf), "device STATUS 0x%x afterwards (not RUNNING)", st);
    verdict(check, false, buf);
    return false;
  }
  const uint64_t before = g_state.frames;
  const bool got = receive(16);
  guest::snprintf(buf, sizeof(buf), "device still RUNNING, %s (%lu frames)",
                  got ? "frames keep arriving" : "NO FRAMES within wait_ms",
                  g_state.frames - before);
  verdict(check, got, buf);
  return got;
}

// Keep `n` pages from the next frames.
bool keep_pages(uint32_t n) {
  g_state.kept = 0;
  g_state.keep_wanted = n;
  const bool ok = receive(n);
  g_state.keep_wanted = 0;
  return ok && g_state.kept == n;
}

// --- config ------------------------------------------------------------------

struct RingRegs {
  uint32_t lo, hi, size;
};
constexpr RingRegs kRx{LNIC_REG_RX_RING_LO, LNIC_REG_RX_RING_HI, LNIC_REG_RX_RING_SIZE};
constexpr RingRegs kRet{LNIC_REG_RET_RING_LO, LNIC_REG_RET_RING_HI, LNIC_REG_RET_RING_SIZE};
constexpr RingRegs kTx{LNIC_REG_TX_RING_LO, LNIC_REG_TX_RING_HI, LNIC_REG_TX_RING_SIZE};

void write_ring(const RingRegs& r, uint64_t gpa, uint32_t size) {
  g_raw.reg_write(r.lo, static_cast<uint32_t>(gpa));
  g_raw.reg_write(r.hi, static_cast<uint32_t>(gpa >> 32));
  g_raw.reg_write(r.size, size);
}

void write_valid_config() {
  write_ring(kRx, g_raw.rx_ring_gpa(), g_raw.rx_entries());
  write_ring(kRet, g_raw.ret_ring_gpa(), g_raw.ret_entries());
  write_ring(kTx, g_raw.tx_ring_gpa(), g_raw.tx_entries());
}

// RESET, valid configuration, then ring `r` set to (gpa, size), ENABLE: expects
// CONFIG_ERROR naming one of r's registers.
void expect_rejected(const char* what, const RingRegs& r, uint64_t gpa, uint32_t size) {
  g_nic.reset();
  write_valid_config();
  write_ring(r, gpa, size);
  g_raw.reg_write(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  const uint32_t st = g_nic.status();
  char buf[200];
  if ((st & LNIC_STATUS_CONFIG_ERROR) != 0) {
    const uint32_t reg = g_raw.reg_read(LNIC_REG_CONFIG_ERROR);
    const bool named_ring = reg == r.lo || reg == r.hi || reg == r.size;
    guest::snprintf(buf, sizeof(buf), "%s (gpa 0x%lx size %u) -> CONFIG_ERROR, register %s%s", what,
                    gpa, size, guest::lnic_reg_name(reg),
                    named_ring ? "" : " (note: not one of the broken ring's registers)");
    verdict("config", true, buf);
  } else {
    guest::snprintf(buf, sizeof(buf), "%s (gpa 0x%lx size %u) ACCEPTED: STATUS 0x%x", what, gpa,
                    size, st);
    verdict("config", false, buf);
  }
  g_nic.reset();
}

uint64_t ram_end(const labyrinth_boot_info& info) {
  uint64_t end = 0;
  for (uint32_t i = 0; i < info.num_mem_regions; ++i) {
    const labyrinth_mem_region& m = info.mem[i];
    if (m.type == LABYRINTH_MEM_RAM && m.base + m.size > end) end = m.base + m.size;
  }
  return end;
}

// BAR0 outside the register file, the read-only PBA, an MSI-X entry past the table:
// all-ones reads, writes without effect (the device counts them; the host test checks).
void check_bar() {
  g_raw.reg_write(0x1900, 0xDEADBEEF);                               // between PBA and BAR end
  g_raw.reg_write(LNIC_MSIX_PBA_OFF, 0xFFFFFFFF);                    // PBA is read-only
  g_raw.reg_write(LNIC_MSIX_TABLE_OFF + 16 * LNIC_MSIX_VECTORS, 0);  // past the table
  const uint32_t beyond = g_raw.reg_read(0x1FFC);
  const uint32_t pba = g_raw.reg_read(LNIC_MSIX_PBA_OFF);
  char buf[160];
  guest::snprintf(buf, sizeof(buf), "BAR0+0x1ffc reads 0x%x (all-ones expected), PBA 0x%x", beyond,
                  pba);
  verdict("bar", beyond == 0xFFFFFFFFu && pba != 0xFFFFFFFFu, buf);
}

// RESET, RESET|ENABLE and RX_STOP hammered at a running device. Every STATUS read on the
// way must be a state the ABI has (an ENABLE may legitimately land once a stop has
// completed), and a final RESET must end in a stopped device; the next bring-up works.
bool valid_status(uint32_t st) {
  return st == 0 || st == LNIC_STATUS_RUNNING || st == LNIC_STATUS_STOPPING ||
         st == (LNIC_STATUS_RUNNING | LNIC_STATUS_RX_STOPPED);
}

void check_reset_storm() {
  write_valid_config();
  g_raw.reg_write(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
  const uint32_t first = g_nic.status();
  bool ok = first == LNIC_STATUS_RUNNING;
  uint32_t bad = 0;
  for (uint32_t i = 0; i < 64; ++i) {
    g_raw.reg_write(LNIC_REG_CONTROL, i % 3 == 0   ? LNIC_CTRL_RESET | LNIC_CTRL_ENABLE
                                      : i % 3 == 1 ? LNIC_CTRL_RESET
                                                   : LNIC_CTRL_RX_STOP);
    const uint32_t st = g_nic.status();
    if (!valid_status(st)) {
      ok = false;
      bad = st;
    }
  }
  const bool stopped = g_nic.reset();  // waits for STOPPING to clear
  const uint32_t st = g_nic.status();
  char buf[200];
  guest::snprintf(buf, sizeof(buf),
                  "64 RESET/ENABLE/RX_STOP writes while running (first STATUS 0x%x, bad 0x%x) "
                  "-> STATUS 0x%x after a final RESET",
                  first, bad, st);
  verdict("reset_storm", ok && stopped && st == 0, buf);
}

void check_config(const labyrinth_boot_info& info) {
  const uint64_t rx = g_raw.rx_ring_gpa(), ret = g_raw.ret_ring_gpa(), tx = g_raw.tx_ring_gpa();
  const uint32_t rxn = g_raw.rx_entries(), retn = g_raw.ret_entries(), txn = g_raw.tx_entries();
  expect_rejected("RX size 0", kRx, rx, 0);
  expect_rejected("RX size 100 (not a power of two)", kRx, rx, 100);
  expect_rejected("RET size 8192 (> LNIC_RING_MAX)", kRet, ret, 2 * LNIC_RING_MAX);
  expect_rejected("TX size 4 (< LNIC_RING_MIN)", kTx, tx, LNIC_RING_MIN / 2);
  expect_rejected("TX size 0xFFFFFFFF", kTx, tx, 0xFFFFFFFFu);
  expect_rejected("RX ring misaligned (+8)", kRx, rx + 8, rxn);
  expect_rejected("RET ring inside the pool window", kRet, g_nic.pool_base(), retn);
  expect_rejected("TX ring in the MMIO gap", kTx, LABYRINTH_DEVICE_MMIO_BASE, txn);
  expect_rejected("RX ring at 1 TiB (beyond RAM)", kRx, 1ull << 40, rxn);
  expect_rejected("RX ring at 2^64 - 4 KiB (wraps)", kRx, ~0xFFFull, rxn);
  const uint64_t end = ram_end(info);
  if (end >= 4096) {
    expect_rejected("RX ring straddling the end of RAM", kRx, end - 4096, LNIC_RING_MAX);
  }
  check_bar();
  check_reset_storm();
}

// --- returns -----------------------------------------------------------------

void check_bogus() {
  if (!keep_pages(1)) {
    verdict("bogus", false, "could not receive a page to misalign");
    return;
  }
  const uint64_t page = g_state.kept_pages[0];
  const uint64_t seq = g_state.kept_seqs[0];
  const uint64_t pool = g_nic.pool_base(), size = g_nic.pool_size();
  const uint64_t addrs[] = {
      pool >= 4096 ? pool - 4096 : 0,  // below the pool window
      pool + size,                     // just above it
      0,
      ~0xFFFull,                               // 2^64 - 4 KiB
      page + 8,                                // misaligned, inside a page we own
      reinterpret_cast<uint64_t>(g_ram_page),  // guest RAM
      g_raw.rx_ring_gpa(),                     // guest RAM: our own RX ring
  };
  for (uint64_t a : addrs) g_raw.ret_post(a, seq, 0);
  g_raw.ring_ret_doorbell();
  guest::printf("%s: [bogus] returned 0x%lx 0x%lx 0x%lx 0x%lx 0x%lx 0x%lx 0x%lx, one doorbell\n",
                kWho, addrs[0], addrs[1], addrs[2], addrs[3], addrs[4], addrs[5], addrs[6]);
  settle();
  if (alive("bogus")) {
    // The misaligned return must not have freed the page: we still own it and
    // give it back properly now (a device that freed it would hand it out again
    // while we hold it: the driver reports "page delivered twice").
    g_nic.return_page(page, seq, 0);
    g_nic.flush();
  }
}

void check_double() {
  if (!keep_pages(1)) {
    verdict("double", false, "could not receive a page");
    return;
  }
  const uint64_t page = g_state.kept_pages[0];
  const uint64_t seq = g_state.kept_seqs[0];
  g_raw.ret_post(page, seq, 0);
  g_raw.ret_post(page, seq, 0);
  g_raw.ring_ret_doorbell();
  guest::printf("%s: [double] returned page 0x%lx twice in one batch, one doorbell\n", kWho, page);
  settle();
  alive("double");
}

void check_stale() {
  if (!keep_pages(1)) {
    verdict("stale", false, "could not receive a page");
    return;
  }
  const uint64_t page = g_state.kept_pages[0];
  const uint64_t seq = g_state.kept_seqs[0];
  // Names deliveries this page did not come with: an older one (as a replayed RETURN
  // entry from the page's previous life would) and one not yet made. The device must
  // leave the page ours: if it freed it, it would deliver it again while we hold it
  // and the driver would report "page delivered twice".
  g_raw.ret_post(page, seq != 0 ? seq - 1 : seq + 1000000, 0, /*keep_in_books=*/true);
  g_raw.ret_post(page, seq + 1000000, 0, /*keep_in_books=*/true);
  g_raw.ring_ret_doorbell();
  guest::printf("%s: [stale] returned page 0x%lx (delivered by seq %lu) naming other seqs\n", kWho,
                page, seq);
  settle();
  if (alive("stale")) {
    g_nic.return_page(page, seq, 0);  // the real return: accepted
    g_nic.flush();
  }
}

// Lets the RX ring fill up (no polling meanwhile): the device then drops every frame
// before it allocates, so no pool page changes hands until we consume again.
bool wait_rx_full() {
  const lnic_ring_header* h = g_raw.rx_header();
  const uint64_t deadline = guest::tsc_deadline_ms(g_wait_ms);
  while (__atomic_load_n(&h->prod, __ATOMIC_ACQUIRE) - g_raw.rx_cons() < g_raw.rx_entries()) {
    if (guest::tsc_passed(deadline)) return false;
    guest::pause();
  }
  return true;
}

// Waits until the device has consumed every RETURN entry we posted.
bool wait_returns_consumed() {
  const lnic_ring_header* h = g_raw.ret_header();
  const uint64_t deadline = guest::tsc_deadline_ms(g_wait_ms);
  while (__atomic_load_n(&h->cons, __ATOMIC_ACQUIRE) != g_raw.ret_prod()) {
    if (guest::tsc_passed(deadline)) return false;
    guest::pause();
  }
  return true;
}

void check_unowned() {
  // A page of the pool that we held and have just given back, and the last page of the
  // window (unbacked unless the pool grew to its maximum), each returned naming no
  // delivery (seq ~0). The first must be a page the pool really has: a page merely "not
  // ours and not in the RX ring" was, under load, often past the pages the pool had
  // backed (the 1,024-entry RX ring holds most of them), so the device counted a bad
  // address instead of not_owner. Returned while the RX ring is full: the device
  // delivers nothing then, so the page given back first in the batch is nobody's but the
  // pool's when the device reads the next entry. Seq ~0 rather than 0: a page that went
  // out as seq 0 and came back is rightly a double return when named by seq 0.
  if (!keep_pages(1)) {
    verdict("unowned", false, "could not receive a page");
    return;
  }
  const uint64_t page = g_state.kept_pages[0];
  const uint64_t seq = g_state.kept_seqs[0];
  g_nic.flush();
  if (!wait_rx_full()) {
    verdict("unowned", false, "the RX ring did not fill within wait_ms");
    g_nic.return_page(page, seq, 0);
    g_nic.flush();
    return;
  }
  constexpr uint64_t kNoDelivery = ~uint64_t{0};
  const uint64_t last = g_nic.pool_base() + g_nic.pool_size() - 4096;
  g_raw.ret_post(page, seq, 0);  // the proper return: the page is the pool's again
  g_raw.ret_post(page, kNoDelivery, 0);
  g_raw.ret_post(last, kNoDelivery, 0);
  g_raw.ring_ret_doorbell();
  guest::printf(
      "%s: [unowned] returned page 0x%lx properly, then it and 0x%lx naming no delivery, "
      "one doorbell\n",
      kWho, page, last);
  if (!wait_returns_consumed()) {
    verdict("unowned", false, "the device did not consume the returns within wait_ms");
    return;
  }
  settle();
  alive("unowned");
}

// --- indices -----------------------------------------------------------------

// Waits (up to wait_ms) until the device has counted a violation beyond `before`
// (LNIC_REG_VIOLATIONS): the device acts on a doorbell or a corrupt index in its own
// thread, some time after the guest wrote it — how long depends on the host (over 20 ms
// for a sanitizer-built VMM in the TCG test VM), so a fixed delay is a race.
bool counted(uint32_t before) {
  const uint64_t deadline = guest::tsc_deadline_ms(g_wait_ms);
  while (g_nic.device_violations() == before) {
    if (guest::tsc_passed(deadline)) return false;
    guest::udelay(100);  // each read is an exit
  }
  return true;
}

void check_indices() {
  char buf[200];
  lnic_ring_header* ret = g_raw.ret_header();
  lnic_ring_header* rx = g_raw.rx_header();
  lnic_ring_header* tx = g_raw.tx_header();

  // RETURN prod far beyond cons + size, then just behind cons.
  for (int variant = 0; variant < 2; ++variant) {
    g_nic.flush();
    const uint32_t ret_cons = __atomic_load_n(&ret->cons, __ATOMIC_ACQUIRE);
    const uint32_t bad = variant == 0 ? ret_cons + 16 * g_raw.ret_entries() + 5 : ret_cons - 1;
    const uint32_t before = g_nic.device_violations();
    __atomic_store_n(&ret->prod, bad, __ATOMIC_RELEASE);
    g_raw.ring_ret_doorbell();
    const bool seen = counted(before);
    __atomic_store_n(&ret->prod, g_raw.ret_prod(), __ATOMIC_RELEASE);
    g_raw.ring_ret_doorbell();
    guest::snprintf(
        buf, sizeof(buf), "RETURN prod %u with cons %u (ring %u) + doorbell: %s, restored to %u",
        bad, ret_cons, g_raw.ret_entries(),
        seen ? "counted by the device" : "NOT COUNTED within wait_ms", g_raw.ret_prod());
    verdict("indices", seen, buf);
    settle();
  }

  // RX cons far beyond prod: the device must not take it as room to post.
  // The device notices at its next frame (pktgen keeps them coming).
  const uint32_t rx_bad = g_raw.rx_cons() + 8 * g_raw.rx_entries() + 3;
  const uint32_t rx_before = g_nic.device_violations();
  __atomic_store_n(&rx->cons, rx_bad, __ATOMIC_RELEASE);
  const bool rx_seen = counted(rx_before);
  __atomic_store_n(&rx->cons, g_raw.rx_cons(), __ATOMIC_RELEASE);
  guest::snprintf(buf, sizeof(buf), "RX cons %u with our cons %u: %s, restored", rx_bad,
                  g_raw.rx_cons(),
                  rx_seen ? "counted by the device" : "NOT COUNTED within wait_ms");
  verdict("indices", rx_seen, buf);
  settle();  // the driver checks RX prod and every completion it now reads

  // TX prod far beyond cons + size: the device must not transmit garbage.
  g_nic.reclaim_tx();
  const uint32_t tx_real = g_raw.tx_prod();
  const uint32_t tx_cons_before = __atomic_load_n(&tx->cons, __ATOMIC_ACQUIRE);
  const uint32_t tx_bad = tx_cons_before + 4 * g_raw.tx_entries() + 3;
  const uint32_t tx_before = g_nic.device_violations();
  __atomic_store_n(&tx->prod, tx_bad, __ATOMIC_RELEASE);
  g_raw.ring_tx_doorbell();
  const bool tx_seen = counted(tx_before);
  const uint32_t tx_cons_after = __atomic_load_n(&tx->cons, __ATOMIC_ACQUIRE);
  __atomic_store_n(&tx->prod, tx_real, __ATOMIC_RELEASE);
  g_raw.ring_tx_doorbell();
  const bool tx_ok = guest::lnic::cons_advance_ok(tx_cons_before, tx_cons_after, tx_real);
  guest::snprintf(buf, sizeof(buf),
                  "TX prod %u with cons %u (ring %u) + doorbell: %s, cons afterwards %u (%s), "
                  "restored to %u",
                  tx_bad, tx_cons_before, g_raw.tx_entries(),
                  tx_seen ? "counted" : "NOT COUNTED within wait_ms", tx_cons_after,
                  tx_ok ? "did not consume garbage" : "CONSUMED GARBAGE DESCRIPTORS", tx_real);
  verdict("indices", tx_ok && tx_seen, buf);
  settle();
  alive("indices");
}

void check_flood(uint64_t count) {
  const uint64_t t0 = guest::rdtsc();
  for (uint64_t i = 0; i < count; ++i) g_raw.ring_ret_doorbell();
  const uint64_t t1 = guest::rdtsc();
  for (uint64_t i = 0; i < count; ++i) g_raw.ring_tx_doorbell();
  const uint64_t t2 = guest::rdtsc();
  guest::printf(
      "%s: [flood] %lu RETURN doorbells in %lu us, %lu TX doorbells in %lu us "
      "(%lu ns per doorbell exit)\n",
      kWho, count, guest::tsc_to_us(t1 - t0), count, guest::tsc_to_us(t2 - t1),
      count != 0 ? (t2 - t0) * 1000000 / guest::tsc_khz() / (2 * count) : 0);
  settle();
  alive("flood");
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  guest::Cmdline args = guest::Cmdline::from_boot_info(info);
  if (!lnic_app::enter_cpl(kWho, args, /*poll=*/true)) return guest::kExitFail;
  const bool do_config = args.flag("config", true);
  const bool do_bogus = args.flag("bogus", true);
  const bool do_double = args.flag("double", true);
  const bool do_stale = args.flag("stale", true);
  const bool do_unowned = args.flag("unowned", true);
  const bool do_indices = args.flag("indices", true);
  const bool do_flood = args.flag("flood", true);
  const uint64_t flood_count = args.u64("flood_count", 2000);
  const uint64_t frames = args.u64("frames", 1000);
  g_wait_ms = args.u64("wait_ms", 10000);
  g_settle_ms = args.u64("settle_ms", 50);
  guest::LnicOptions opts = lnic_app::driver_options(args, /*poll=*/true);
  if (!lnic_app::check_args(kWho, args, kKeys)) return guest::kExitFail;

  // Configure without ENABLE first: the config checks need valid ring addresses
  // but no traffic yet (pages in flight would be lost when we re-zero the rings).
  opts.enable = !do_config;
  if (!lnic_app::start(kWho, g_nic, info, args, opts, on_frame, &g_state)) return guest::kExitFail;
  guest::printf(
      "%s: checks config=%d bogus=%d double=%d stale=%d unowned=%d indices=%d flood=%d "
      "(flood_count=%lu) then %lu frames; poll mode, interrupts off\n",
      kWho, do_config, do_bogus, do_double, do_stale, do_unowned, do_indices, do_flood, flood_count,
      frames);
  if (do_config) {
    check_config(info);
    g_nic.reset();
    opts.enable = true;
    const guest::LnicError e = g_nic.bring_up(opts, on_frame, &g_state);
    char buf[160];
    guest::snprintf(buf, sizeof(buf), "correct configuration afterwards -> %s (STATUS 0x%x)",
                    guest::to_string(e), g_nic.status());
    verdict("config", e == guest::LnicError::kNone, buf);
    if (e != guest::LnicError::kNone) {
      guest::printf("%s: frames=0 checks=%u failed=%u device_faults=%lu\n", kWho, g_checks,
                    g_failed, g_nic.stats().device_faults());
      return guest::kExitFail;
    }
  }

  if (!receive(16)) {
    guest::printf(
        "%s: FAIL: no frames within %lu ms of ENABLE (is a backend generating "
        "traffic?)\n",
        kWho, g_wait_ms);
    g_nic.print_stats(kWho);
    return guest::kExitFail;
  }
  if (do_bogus) check_bogus();
  if (do_double) check_double();
  if (do_stale) check_stale();
  if (do_unowned) check_unowned();
  if (do_indices) check_indices();
  if (do_flood) check_flood(flood_count);

  const uint64_t before = g_state.frames;
  const bool got = receive(frames);
  g_nic.flush();
  const uint64_t received = g_state.frames - before;
  char buf[160];
  guest::snprintf(buf, sizeof(buf), "%lu/%lu frames received normally after the checks", received,
                  frames);
  verdict("final", got, buf);
  g_nic.print_stats(kWho);
  const uint64_t faults = g_nic.stats().device_faults();
  if (faults != 0) {
    guest::printf("%s: FAIL: the driver saw %lu device faults (see DEVICE BUG lines)\n", kWho,
                  faults);
  }
  guest::printf("%s: frames=%lu checks=%u failed=%u device_faults=%lu\n", kWho, g_state.frames,
                g_checks, g_failed, faults);
  return g_failed == 0 && faults == 0 ? guest::kExitPass : guest::kExitFail;
}
