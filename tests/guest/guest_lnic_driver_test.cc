// The lnic guest driver (guest/drivers/lnic/) built for the host and run
// against a scripted fake device: the "BAR0" is a plain 8 KiB array (registers and
// MSI-X table) the
// test reads and writes, the page pool an aligned host buffer, and guest
// addresses are host pointers (the guest's identity map, in miniature). The test
// plays the device: it posts completions into the RX ring the driver set up,
// consumes RETURN/TX entries and moves the device-owned indices.
// LAPIC, IDT registration and serial output are stubbed; printed lines are
// captured so the DEVICE BUG reports can be checked.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "guest/drivers/lnic/lnic.h"
#include "guest/drivers/lnic/lnic_raw.h"
#include "guest/runtime/serial.h"
#include "guest/runtime/tsc.h"

// --- stubs for the runtime pieces the driver and print.cc use -----------------
namespace {
std::string g_out;
guest::IrqHandler g_handler[256];
void* g_handler_ctx[256];
int g_eois = 0;
constexpr uint32_t kApicId = 2;
// What the device could see when the LAPIC took the EOI (the order check: an EOI is
// the driver's last word; anything posted after it must raise a new interrupt, so
// every return must be published and the device told before it).
struct EoiSnapshot {
  uint32_t ret_prod;      // RETURN entries published to the device
  uint32_t ret_doorbell;  // the RETURN doorbell register (the test clears it)
};
std::vector<EoiSnapshot> g_eoi_seen;
// Set by the FakeDevice (below) for its lifetime: lapic_eoi() looks at its rings.
std::function<EoiSnapshot()> g_eoi_snapshot;
}  // namespace

// The runtime's CPL-3 interrupt flag (user.S); host code runs at CPL 3, where
// PUSHF shows IF = 1, so 1 keeps interrupts_enabled() as it was.
extern "C" {
volatile uint32_t guest_user_if = 1;
}

namespace guest {
void serial_putc(char c) {
  g_out.push_back(c);
}
SpinLock& serial_lock() {
  static SpinLock lock;
  return lock;
}
unsigned this_cpu() {
  return 0;
}
uint32_t lapic_id() {
  return kApicId;
}
void lapic_eoi() {
  ++g_eois;
  if (g_eoi_snapshot) g_eoi_seen.push_back(g_eoi_snapshot());
}
bool irq_register(uint8_t vector, IrqHandler handler, void* context) {
  g_handler[vector] = handler;  // every test builds a new driver on the same vector
  g_handler_ctx[vector] = context;
  return true;
}
}  // namespace guest

namespace {

using guest::Lnic;
using guest::LnicError;
using guest::LnicFault;
using guest::LnicFrame;
using guest::LnicOptions;
using guest::LnicVerdict;

uint64_t measure_tsc_khz() {
  const auto t0 = std::chrono::steady_clock::now();
  const uint64_t c0 = guest::rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const uint64_t c1 = guest::rdtsc();
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  return (c1 - c0) * 1000 / static_cast<uint64_t>(us);
}

constexpr uint32_t kPoolPages = 256;
constexpr uint8_t kMac[6] = {0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF};

// The fake device: registers, pool and boot info, plus the device's side of
// the rings.
class FakeDevice {
 public:
  FakeDevice() {
    static bool tsc_ready = false;
    if (!tsc_ready) {
      guest::tsc_init(measure_tsc_khz());
      tsc_ready = true;
    }
    regs_ = static_cast<uint32_t*>(std::aligned_alloc(4096, LNIC_BAR_SIZE));
    pool_ = static_cast<uint8_t*>(std::aligned_alloc(4096, kPoolPages * 4096));
    std::memset(regs_, 0, LNIC_BAR_SIZE);
    std::memset(pool_, 0, kPoolPages * 4096);
    reg(LNIC_REG_MAGIC) = LNIC_MAGIC;
    reg(LNIC_REG_VERSION) = LNIC_VERSION;
    reg(LNIC_REG_FEATURES) = LNIC_F_TIMESTAMPS;
    reg(LNIC_REG_STATUS) = LNIC_STATUS_RUNNING;
    reg(LNIC_REG_MAC_LO) = kMac[0] | kMac[1] << 8 | kMac[2] << 16 | uint32_t{kMac[3]} << 24;
    reg(LNIC_REG_MAC_HI) = kMac[4] | kMac[5] << 8;
    reg(LNIC_REG_POOL_BASE_LO) = static_cast<uint32_t>(pool_gpa());
    reg(LNIC_REG_POOL_BASE_HI) = static_cast<uint32_t>(pool_gpa() >> 32);
    reg(LNIC_REG_POOL_SIZE_LO) = kPoolPages * 4096u;
    std::memset(&info_, 0, sizeof(info_));
    info_.magic = LABYRINTH_BOOT_INFO_MAGIC;
    info_.version = LABYRINTH_BOOT_INFO_VERSION;
    info_.num_cpus = 1;
    info_.identity_map_end = ~0ull;
    g_out.clear();
    g_eois = 0;
    g_eoi_seen.clear();
    g_eoi_snapshot = [this] {
      const lnic_ring_header* h = ret();
      return EoiSnapshot{h != nullptr ? __atomic_load_n(&h->prod, __ATOMIC_ACQUIRE) : 0,
                         reg(LNIC_REG_RET_DOORBELL)};
    };
  }
  ~FakeDevice() {
    g_eoi_snapshot = nullptr;
    std::free(regs_);
    std::free(pool_);
  }

  uint32_t& reg(uint32_t offset) { return regs_[offset / 4]; }
  uint64_t bar() const { return reinterpret_cast<uint64_t>(regs_); }
  // MSI-X table entry `vector`, dword `word` (address lo, hi, data, vector control).
  uint32_t& msix(uint32_t vector, uint32_t word) {
    return reg(LNIC_MSIX_TABLE_OFF + vector * 16 + word * 4);
  }
  labyrinth_boot_info& info() { return info_; }
  uint64_t pool_gpa() const { return reinterpret_cast<uint64_t>(pool_); }
  uint64_t page(uint32_t i) const { return pool_gpa() + uint64_t{i} * 4096; }

  template <typename T>
  T* ring(uint32_t lo) {
    const uint64_t gpa = uint64_t{reg(lo)} | uint64_t{reg(lo + 4)} << 32;
    return reinterpret_cast<T*>(gpa);
  }
  lnic_ring_header* rx() { return ring<lnic_ring_header>(LNIC_REG_RX_RING_LO); }
  lnic_ring_header* ret() { return ring<lnic_ring_header>(LNIC_REG_RET_RING_LO); }
  lnic_ring_header* tx() { return ring<lnic_ring_header>(LNIC_REG_TX_RING_LO); }

  // Posts one completion (page i, or a raw gpa) and publishes prod.
  void post_gpa(uint64_t gpa, uint32_t len, uint64_t seq, uint32_t flags = 0) {
    lnic_ring_header* h = rx();
    const uint32_t size = reg(LNIC_REG_RX_RING_SIZE);
    auto* e = reinterpret_cast<lnic_rx_completion*>(h + 1);
    lnic_rx_completion& c = e[h->prod & (size - 1)];
    c = lnic_rx_completion{gpa, len, flags, seq, 1000 + seq, 2000 + seq, {}};
    __atomic_store_n(&h->prod, h->prod + 1, __ATOMIC_RELEASE);
  }
  void post(uint32_t page_index, uint32_t len = 128) {
    uint8_t* p = pool_ + uint64_t{page_index} * 4096;
    guest::lnic::fill_pktgen(p, len, kMac, seq_, static_cast<uint8_t>(seq_), true, false);
    post_gpa(page(page_index), len, seq_++);
  }
  // Consumes every published RETURN entry.
  std::vector<lnic_return> take_returns() {
    lnic_ring_header* h = ret();
    const uint32_t size = reg(LNIC_REG_RET_RING_SIZE);
    auto* e = reinterpret_cast<lnic_return*>(h + 1);
    std::vector<lnic_return> out;
    const uint32_t prod = __atomic_load_n(&h->prod, __ATOMIC_ACQUIRE);
    while (h->cons != prod) {
      out.push_back(e[h->cons & (size - 1)]);
      __atomic_store_n(&h->cons, h->cons + 1, __ATOMIC_RELEASE);
    }
    return out;
  }
  std::vector<lnic_tx_desc> take_tx() {
    lnic_ring_header* h = tx();
    const uint32_t size = reg(LNIC_REG_TX_RING_SIZE);
    auto* e = reinterpret_cast<lnic_tx_desc*>(h + 1);
    std::vector<lnic_tx_desc> out;
    const uint32_t prod = __atomic_load_n(&h->prod, __ATOMIC_ACQUIRE);
    while (h->cons != prod) {
      out.push_back(e[h->cons & (size - 1)]);
      __atomic_store_n(&h->cons, h->cons + 1, __ATOMIC_RELEASE);
    }
    return out;
  }
  void interrupt() {
    const uint8_t v = static_cast<uint8_t>(msix(LNIC_VEC_RX, 2));
    ASSERT_NE(g_handler[v], nullptr);
    guest::InterruptFrame frame{};
    g_handler[v](frame, g_handler_ctx[v]);
  }

 private:
  uint32_t* regs_;
  uint8_t* pool_;
  labyrinth_boot_info info_;
  uint64_t seq_ = 0;
};

// What the program callback saw.
struct Seen {
  std::vector<LnicFrame> frames;
  uint32_t keep = 0;  // keep this many pages
  bool echo = false;  // send_page every frame
  uint32_t pattern_errors = 0;
};

LnicVerdict record(Lnic& nic, const LnicFrame& f, void* ctx) {
  Seen& s = *static_cast<Seen*>(ctx);
  s.frames.push_back(f);
  if (guest::lnic::check_pktgen(f.data, f.len).status != guest::lnic::PktgenStatus::kOk) {
    ++s.pattern_errors;
  }
  if (s.echo) {
    return nic.send_page(f.page_gpa, f.seq, f.len, f.t_guest_irq) ? LnicVerdict::kKeep
                                                                  : LnicVerdict::kReturn;
  }
  if (s.keep != 0) {
    --s.keep;
    return LnicVerdict::kKeep;
  }
  return LnicVerdict::kReturn;
}

LnicOptions small(bool poll) {
  LnicOptions o;
  o.rx_entries = 64;
  o.ret_entries = 64;
  o.tx_entries = 16;
  o.tx_buffers = 8;
  o.poll = poll;
  return o;
}

// The driver's bring-up on the fake: attach() is probe() minus the PCI config cycles
// (port I/O, which a host process cannot do).
LnicError init(Lnic& nic, FakeDevice& dev, uint32_t index, const LnicOptions& o,
               guest::LnicRxCallback cb, void* ctx) {
  const LnicError e = nic.attach(dev.info(), index, dev.bar());
  return e != LnicError::kNone ? e : nic.bring_up(o, cb, ctx);
}

uint64_t fault(const Lnic& nic, LnicFault f) {
  return nic.stats().faults[static_cast<uint32_t>(f)];
}

TEST(LnicDriver, BringUpProgramsRingsMsiAndEnable) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(false), record, &seen), LnicError::kNone) << g_out;
  for (uint32_t lo : {LNIC_REG_RX_RING_LO, LNIC_REG_RET_RING_LO, LNIC_REG_TX_RING_LO}) {
    const uint64_t gpa = uint64_t{dev.reg(lo)} | uint64_t{dev.reg(lo + 4)} << 32;
    EXPECT_NE(gpa, 0u);
    EXPECT_EQ(gpa % 4096, 0u);
  }
  EXPECT_EQ(dev.reg(LNIC_REG_RX_RING_SIZE), 64u);
  EXPECT_EQ(dev.reg(LNIC_REG_RET_RING_SIZE), 64u);
  EXPECT_EQ(dev.reg(LNIC_REG_TX_RING_SIZE), 16u);
  EXPECT_EQ(dev.msix(LNIC_VEC_RX, 0), 0xFEE00000u | kApicId << 12);
  EXPECT_EQ(dev.msix(LNIC_VEC_RX, 1), 0u);
  EXPECT_EQ(dev.msix(LNIC_VEC_RX, 2), guest::kLnicVectorBase + 0u);
  EXPECT_EQ(dev.msix(LNIC_VEC_RX, 3), 0u);  // unmasked
  EXPECT_EQ(dev.msix(LNIC_VEC_TX, 3), 0u);  // never written: the driver polls TX
  EXPECT_EQ(dev.tx()->flags, LNIC_RING_F_NO_IRQ);
  EXPECT_EQ(dev.reg(LNIC_REG_CONTROL), LNIC_CTRL_ENABLE);
  EXPECT_EQ(dev.rx()->flags, 0u);
  EXPECT_EQ(dev.rx()->prod, 0u);
  EXPECT_EQ(nic.features(), LNIC_F_TIMESTAMPS);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

TEST(LnicDriver, PollModeSetsNoIrq) {
  FakeDevice dev;
  Lnic nic;
  ASSERT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kNone);
  EXPECT_EQ(dev.rx()->flags, LNIC_RING_F_NO_IRQ);
}

TEST(LnicDriver, ProbeAndBringUpFailures) {
  {
    FakeDevice dev;
    Lnic nic;
    EXPECT_EQ(init(nic, dev, guest::kLnicMaxNics, small(true), nullptr, nullptr),
              LnicError::kNoDevice);
  }
  {
    FakeDevice dev;
    dev.info().identity_map_end = dev.bar() + LNIC_MMIO_SIZE;  // BAR0 not all mapped
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kBadWindow);
  }
  {
    FakeDevice dev;
    dev.reg(LNIC_REG_MAGIC) = 0xFFFFFFFF;
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kBadMagic);
  }
  {
    FakeDevice dev;
    dev.reg(LNIC_REG_VERSION) = LNIC_VERSION + 1;
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kBadVersion);
  }
  {
    FakeDevice dev;
    dev.reg(LNIC_REG_POOL_SIZE_LO) = 0;
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kNoPool);
  }
  {
    FakeDevice dev;
    Lnic nic;
    LnicOptions o = small(true);
    o.rx_entries = 100;
    EXPECT_EQ(init(nic, dev, 0, o, nullptr, nullptr), LnicError::kBadOptions);
  }
  {
    FakeDevice dev;
    dev.reg(LNIC_REG_STATUS) = LNIC_STATUS_CONFIG_ERROR;
    dev.reg(LNIC_REG_CONFIG_ERROR) = LNIC_REG_RX_RING_SIZE;
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kConfigRejected);
    EXPECT_EQ(nic.config_error_register(), static_cast<uint32_t>(LNIC_REG_RX_RING_SIZE));
    EXPECT_NE(g_out.find("RX_RING_SIZE"), std::string::npos) << g_out;
  }
  {
    FakeDevice dev;
    dev.reg(LNIC_REG_POOL_BASE_LO) += 8;  // a pool window that is not page aligned
    Lnic nic;
    EXPECT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kNoPool);
  }
}

TEST(LnicDriver, PollDeliversFramesAndReturnsPagesWithOneDoorbell) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  for (uint32_t i = 0; i < 5; ++i) dev.post(i, 60 + i);
  EXPECT_TRUE(nic.rx_pending());
  EXPECT_EQ(nic.poll(), 5u);
  EXPECT_FALSE(nic.rx_pending());
  ASSERT_EQ(seen.frames.size(), 5u);
  EXPECT_EQ(seen.pattern_errors, 0u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(seen.frames[i].page_gpa, dev.page(i));
    EXPECT_EQ(seen.frames[i].len, 60 + i);
    EXPECT_EQ(seen.frames[i].seq, i);
    EXPECT_EQ(seen.frames[i].t_guest_irq, 0u);  // polled
  }
  EXPECT_EQ(dev.rx()->cons, 5u);
  EXPECT_EQ(nic.stats().ret_doorbells, 1u);
  EXPECT_EQ(dev.reg(LNIC_REG_RET_DOORBELL), 1u);
  const auto returns = dev.take_returns();
  ASSERT_EQ(returns.size(), 5u);
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(returns[i].page_gpa, dev.page(i));
    EXPECT_EQ(returns[i].t_guest_irq, 0u);
  }
  EXPECT_EQ(nic.pages_held(), 0u);
  EXPECT_EQ(nic.stats().rx_bytes, 60u + 61 + 62 + 63 + 64);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

TEST(LnicDriver, InterruptStampsEntryTscOnEveryReturnAndEoisLast) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(false), record, &seen), LnicError::kNone);
  for (uint32_t i = 0; i < 10; ++i) dev.post(i);
  dev.reg(LNIC_REG_RET_DOORBELL) = 0;
  const uint64_t before = guest::rdtsc();
  dev.interrupt();
  const uint64_t after = guest::rdtsc();
  EXPECT_EQ(g_eois, 1);
  // The EOI came last: by then all ten returns were published and the doorbell rung.
  ASSERT_EQ(g_eoi_seen.size(), 1u);
  EXPECT_EQ(g_eoi_seen[0].ret_prod, 10u);
  EXPECT_EQ(g_eoi_seen[0].ret_doorbell, 1u);
  ASSERT_EQ(seen.frames.size(), 10u);
  const auto returns = dev.take_returns();
  ASSERT_EQ(returns.size(), 10u);
  const uint64_t t = returns[0].t_guest_irq;
  EXPECT_GE(t, before);
  EXPECT_LE(t, after);
  for (const auto& r : returns) EXPECT_EQ(r.t_guest_irq, t);  // one handler run, one stamp
  EXPECT_EQ(seen.frames[3].t_guest_irq, t);
  EXPECT_EQ(nic.stats().ret_doorbells, 1u);
  EXPECT_EQ(nic.stats().irqs, 1u);
  dev.interrupt();  // nothing new
  EXPECT_EQ(nic.stats().irqs_empty, 1u);
  EXPECT_EQ(nic.stats().ret_doorbells, 1u);  // no returns, no doorbell
  EXPECT_EQ(g_eois, 2);
}

// A completion posted while the handler runs (after its entry snapshot of RX prod)
// is stamped with a TSC read after the load that revealed it, never with the entry
// TSC: that stamp would be earlier than the completion itself (counted as an "early"
// guest sample by the host).
struct PostDuringHandler {
  FakeDevice* dev;
  Seen seen;
  bool posted = false;
};
LnicVerdict post_more(Lnic& nic, const LnicFrame& f, void* ctx) {
  auto& p = *static_cast<PostDuringHandler*>(ctx);
  if (!p.posted) {
    p.posted = true;
    // The device posts two more while the guest handles the first.
    p.dev->post(20);
    p.dev->post(21);
  }
  return record(nic, f, &p.seen);
}

TEST(LnicDriver, CompletionsRevealedDuringTheHandlerGetALaterStamp) {
  FakeDevice dev;
  Lnic nic;
  PostDuringHandler p{&dev, {}, false};
  ASSERT_EQ(init(nic, dev, 0, small(false), post_more, &p), LnicError::kNone);
  dev.post(0);
  dev.interrupt();
  ASSERT_EQ(p.seen.frames.size(), 3u);
  const uint64_t entry = p.seen.frames[0].t_guest_irq;
  EXPECT_NE(entry, 0u);
  EXPECT_GT(p.seen.frames[1].t_guest_irq, entry);
  EXPECT_EQ(p.seen.frames[2].t_guest_irq, p.seen.frames[1].t_guest_irq);  // one load showed both
  const auto returns = dev.take_returns();
  ASSERT_EQ(returns.size(), 3u);
  EXPECT_EQ(returns[1].t_guest_irq, p.seen.frames[1].t_guest_irq);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

// An interrupt taken while the ring is being walked (IF clear not honoured, or a
// handler re-entered) must not walk it a second time: that delivers completions
// twice and runs cons past prod (what the standard-KVM report showed). Refused,
// counted, and the outer walk finishes exactly once per completion.
struct Reenter {
  FakeDevice* dev;
  Seen seen;
  int nested = 0;
};
LnicVerdict reenter(Lnic& nic, const LnicFrame& f, void* ctx) {
  auto& r = *static_cast<Reenter*>(ctx);
  if (r.nested++ == 0) r.dev->interrupt();  // "interrupted" in the middle of the walk
  return record(nic, f, &r.seen);
}

TEST(LnicDriver, ReenteredRingWalkIsRefusedAndReported) {
  FakeDevice dev;
  Lnic nic;
  Reenter r{&dev, {}, 0};
  ASSERT_EQ(init(nic, dev, 0, small(false), reenter, &r), LnicError::kNone);
  for (uint32_t i = 0; i < 4; ++i) dev.post(i);
  nic.poll();
  ASSERT_EQ(r.seen.frames.size(), 4u);  // each exactly once
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(r.seen.frames[i].seq, i);
  EXPECT_EQ(fault(nic, LnicFault::kReentered), 1u);
  EXPECT_EQ(fault(nic, LnicFault::kPageTwice), 0u);
  EXPECT_EQ(fault(nic, LnicFault::kSeqBackwards), 0u);
  EXPECT_EQ(guest::LnicRaw(nic).rx_cons(), dev.rx()->prod);
  EXPECT_EQ(dev.take_returns().size(), 4u);
}

TEST(LnicDriver, HandlerBudgetLeavesTheRestPending) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  LnicOptions o = small(false);
  o.rx_budget = 4;
  ASSERT_EQ(init(nic, dev, 0, o, record, &seen), LnicError::kNone);
  for (uint32_t i = 0; i < 10; ++i) dev.post(i);
  dev.interrupt();
  EXPECT_EQ(seen.frames.size(), 4u);
  EXPECT_TRUE(nic.rx_pending());
  EXPECT_TRUE(nic.rx_backlog());  // no MSI may come for the rest: the program polls
  EXPECT_EQ(nic.poll(), 6u);
  EXPECT_FALSE(nic.rx_backlog());
  dev.post(11);
  dev.interrupt();  // within budget: no backlog
  EXPECT_FALSE(nic.rx_backlog());
}

TEST(LnicDriver, DoorbellBatchThresholdAndFlush) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  LnicOptions o = small(true);
  o.ret_doorbell_batch = 8;
  ASSERT_EQ(init(nic, dev, 0, o, record, &seen), LnicError::kNone);
  for (uint32_t i = 0; i < 5; ++i) dev.post(i);
  nic.poll();
  EXPECT_EQ(nic.stats().ret_doorbells, 0u);
  EXPECT_EQ(dev.ret()->prod, 5u);  // published even without a doorbell
  for (uint32_t i = 5; i < 8; ++i) dev.post(i);
  nic.poll();
  EXPECT_EQ(nic.stats().ret_doorbells, 1u);  // 8 unannounced
  dev.post(8);
  nic.poll();
  EXPECT_EQ(nic.stats().ret_doorbells, 1u);
  nic.flush();
  EXPECT_EQ(nic.stats().ret_doorbells, 2u);
  nic.flush();
  EXPECT_EQ(nic.stats().ret_doorbells, 2u);  // nothing new
}

TEST(LnicDriver, BadCompletionsAreReportedNotDelivered) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.post_gpa(dev.page(0), 0, 0);                           // len 0: page returned
  dev.post_gpa(dev.page(1), LNIC_FRAME_MAX + 1, 1);          // too long: page returned
  dev.post_gpa(dev.page(2) + 64, 100, 2);                    // misaligned: dropped
  dev.post_gpa(dev.pool_gpa() + kPoolPages * 4096, 100, 3);  // above the pool
  dev.post_gpa(dev.pool_gpa() - 4096, 100, 4);               // below the pool
  dev.post(5);                                               // fine (seq 0 of the fake)
  nic.poll();
  EXPECT_EQ(seen.frames.size(), 1u);
  EXPECT_EQ(fault(nic, LnicFault::kBadCompletion), 5u);
  const auto returns = dev.take_returns();
  ASSERT_EQ(returns.size(), 3u);
  EXPECT_EQ(returns[0].page_gpa, dev.page(0));
  EXPECT_EQ(returns[1].page_gpa, dev.page(1));
  EXPECT_EQ(returns[2].page_gpa, dev.page(5));
  EXPECT_NE(g_out.find("DEVICE BUG (bad completion)"), std::string::npos) << g_out;
  EXPECT_NE(g_out.find("len > LNIC_FRAME_MAX"), std::string::npos) << g_out;
}

TEST(LnicDriver, PageDeliveredWhileOwnedIsADeviceBug) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  seen.keep = 1;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.post(7);
  dev.post(7);
  nic.poll();
  EXPECT_EQ(seen.frames.size(), 1u);
  EXPECT_EQ(fault(nic, LnicFault::kPageTwice), 1u);
  EXPECT_TRUE(nic.owns(dev.page(7)));
  EXPECT_TRUE(nic.return_page(dev.page(7), seen.frames[0].seq, 0));
  EXPECT_FALSE(nic.return_page(dev.page(7), seen.frames[0].seq, 0));  // misuse: not ours any more
  EXPECT_EQ(nic.stats().driver_errors, 1u);
  nic.flush();
  EXPECT_EQ(dev.take_returns().size(), 1u);
}

TEST(LnicDriver, RxProdBeyondTheRingIsNotConsumed) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.rx()->prod = 65;  // ring of 64
  EXPECT_EQ(nic.poll(), 0u);
  EXPECT_EQ(nic.poll(), 0u);
  EXPECT_EQ(fault(nic, LnicFault::kRxProdBeyond), 1u);  // reported once per value
  EXPECT_EQ(dev.rx()->cons, 0u);
  EXPECT_TRUE(seen.frames.empty());
}

TEST(LnicDriver, CompletionSeqMustIncrease) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.post_gpa(dev.page(0), 60, 5);
  dev.post_gpa(dev.page(1), 60, 6);
  dev.post_gpa(dev.page(2), 60, 10);  // jump: drops, counted
  dev.post_gpa(dev.page(3), 60, 3);   // backwards: device bug
  nic.poll();
  EXPECT_EQ(seen.frames.size(), 4u);
  EXPECT_EQ(nic.stats().rx_seq_jumps, 1u);
  EXPECT_EQ(fault(nic, LnicFault::kSeqBackwards), 1u);
}

TEST(LnicDriver, IndicesWrapTheRingManyTimes) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  LnicOptions o = small(true);
  o.rx_entries = 8;
  o.ret_entries = 8;
  ASSERT_EQ(init(nic, dev, 0, o, record, &seen), LnicError::kNone);
  uint32_t page = 0;
  for (int round = 0; round < 100; ++round) {
    for (int i = 0; i < 5; ++i) dev.post(page++ % kPoolPages);
    EXPECT_EQ(nic.poll(), 5u);
    EXPECT_EQ(dev.take_returns().size(), 5u);
  }
  EXPECT_EQ(seen.frames.size(), 500u);
  EXPECT_EQ(seen.pattern_errors, 0u);
  EXPECT_EQ(dev.rx()->cons, 500u);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

// The device here looks at the RETURN ring only once the driver has published it full,
// which a driver does when it finds no slot, right before it waits: so the driver
// is certain to wait, and a driver that waited without first publishing what it wrote
// would hang a real device (here: the device gives up and the driver reports a stall).
TEST(LnicDriver, FullReturnRingWaitsForTheDevice) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  LnicOptions o = small(true);
  o.ret_entries = 8;
  o.ret_doorbell_batch = 1;  // every batch ends with its returns announced
  ASSERT_EQ(init(nic, dev, 0, o, record, &seen), LnicError::kNone);
  // 6 returns published (end of batch), then 6 more frames: 2 returns fit unpublished
  // (below the half-way doorbell), the third finds the ring full.
  for (uint32_t i = 0; i < 6; ++i) dev.post(i);
  EXPECT_EQ(nic.poll(), 6u);
  ASSERT_EQ(__atomic_load_n(&dev.ret()->prod, __ATOMIC_ACQUIRE), 6u);
  for (uint32_t i = 6; i < 12; ++i) dev.post(i);
  std::atomic<bool> done{false};
  std::thread device([&] {
    lnic_ring_header* h = dev.ret();
    const uint32_t size = dev.reg(LNIC_REG_RET_RING_SIZE);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (__atomic_load_n(&h->prod, __ATOMIC_ACQUIRE) - h->cons < size) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "the driver never published a full RETURN ring";
        break;
      }
      std::this_thread::yield();
    }
    size_t n = 0;
    while (!done.load()) n += dev.take_returns().size();
    n += dev.take_returns().size();
    EXPECT_EQ(n, 12u);
  });
  EXPECT_EQ(nic.poll(), 6u);
  done.store(true);
  device.join();
  EXPECT_GE(nic.stats().ret_full_waits, 1u);  // more if it sees the device mid-batch
  EXPECT_EQ(nic.stats().returns_lost, 0u);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

TEST(LnicDriver, DeviceRetConsBeyondProdIsReported) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  LnicOptions o = small(true);
  o.ret_entries = 8;
  o.stall_ms = 200;
  ASSERT_EQ(init(nic, dev, 0, o, record, &seen), LnicError::kNone);
  for (uint32_t i = 0; i < 8; ++i) dev.post(i);
  nic.poll();
  dev.ret()->cons = 100;  // past our prod of 8
  dev.post(8);
  nic.poll();  // ring full -> reads cons -> insane -> waits, stalls
  EXPECT_GE(fault(nic, LnicFault::kRetConsBad), 1u);
  EXPECT_EQ(fault(nic, LnicFault::kStall), 1u);
  EXPECT_EQ(nic.stats().returns_lost, 1u);
}

TEST(LnicDriver, TxCopyUsesDriverBuffersAndReclaims) {
  FakeDevice dev;
  Lnic nic;
  ASSERT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kNone);
  uint8_t frame[300];
  for (int i = 0; i < 300; ++i) frame[i] = static_cast<uint8_t>(i * 7);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(nic.send_copy(frame, 300 - i));
  EXPECT_EQ(dev.tx()->prod, 3u);  // published at once
  EXPECT_EQ(nic.stats().tx_doorbells, 0u);
  nic.flush();
  EXPECT_EQ(nic.stats().tx_doorbells, 1u);
  const auto descs = dev.take_tx();
  ASSERT_EQ(descs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(descs[i].len, 300u - i);
    EXPECT_EQ(descs[i].flags, 0u);
    EXPECT_EQ(descs[i].buf_gpa % 4096, 0u);
    EXPECT_FALSE(guest::lnic::page_in_pool(descs[i].buf_gpa, dev.pool_gpa(), kPoolPages * 4096));
    EXPECT_EQ(std::memcmp(reinterpret_cast<void*>(descs[i].buf_gpa), frame, 300 - i), 0);
  }
  EXPECT_NE(descs[0].buf_gpa, descs[1].buf_gpa);
  EXPECT_EQ(nic.tx_in_flight(), 3u);
  EXPECT_EQ(nic.reclaim_tx(), 3u);
  EXPECT_EQ(nic.tx_in_flight(), 0u);
  // All 8 buffers usable again, many times over (ring of 16 wraps).
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(nic.send_copy(frame, 64));
    nic.flush();
    EXPECT_EQ(dev.take_tx().size(), 8u);
    nic.service();
  }
  EXPECT_FALSE(nic.send_copy(frame, 0));
  EXPECT_FALSE(nic.send_copy(frame, LNIC_FRAME_MAX + 1));
  EXPECT_EQ(nic.stats().driver_errors, 2u);
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

TEST(LnicDriver, TxBuffersExhaustedWaitThenFail) {
  FakeDevice dev;
  Lnic nic;
  LnicOptions o = small(true);
  o.stall_ms = 300;
  ASSERT_EQ(init(nic, dev, 0, o, nullptr, nullptr), LnicError::kNone);
  uint8_t frame[64] = {};
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(nic.send_copy(frame, 64));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(nic.send_copy(frame, 64));  // device never consumes: a stall_ms stall
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(270));
  EXPECT_EQ(nic.stats().tx_full, 1u);
  EXPECT_EQ(fault(nic, LnicFault::kStall), 1u);
  EXPECT_EQ(nic.stats().tx_doorbells, 1u);  // it told the device before waiting
}

TEST(LnicDriver, ZeroCopyEchoReturnsThePageAfterTxCompletes) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  seen.echo = true;
  ASSERT_EQ(init(nic, dev, 0, small(false), record, &seen), LnicError::kNone);
  dev.post(3, 200);
  dev.post(4, 300);
  dev.interrupt();
  ASSERT_EQ(seen.frames.size(), 2u);
  EXPECT_EQ(nic.stats().tx_doorbells, 1u);  // rung at the end of the handler
  EXPECT_TRUE(dev.take_returns().empty());  // pages still in TX
  EXPECT_EQ(nic.pages_held(), 2u);
  const auto descs = dev.take_tx();
  ASSERT_EQ(descs.size(), 2u);
  EXPECT_EQ(descs[0].buf_gpa, dev.page(3));
  EXPECT_EQ(descs[0].len, 200u);
  EXPECT_EQ(descs[1].buf_gpa, dev.page(4));
  nic.service();  // reclaims, returns, rings
  const auto returns = dev.take_returns();
  ASSERT_EQ(returns.size(), 2u);
  EXPECT_EQ(returns[0].page_gpa, dev.page(3));
  EXPECT_EQ(returns[0].t_guest_irq, seen.frames[0].t_guest_irq);
  EXPECT_NE(returns[0].t_guest_irq, 0u);
  EXPECT_EQ(nic.pages_held(), 0u);
  EXPECT_EQ(returns[0].seq, seen.frames[0].seq);  // named the delivering completion
  EXPECT_EQ(returns[1].seq, seen.frames[1].seq);
  EXPECT_FALSE(nic.send_page(dev.page(3), seen.frames[0].seq, 100, 0));  // no longer ours
  EXPECT_EQ(nic.stats().device_faults(), 0u) << g_out;
}

TEST(LnicDriver, TxConsBeyondProdIsReported) {
  FakeDevice dev;
  Lnic nic;
  ASSERT_EQ(init(nic, dev, 0, small(true), nullptr, nullptr), LnicError::kNone);
  uint8_t frame[64] = {};
  ASSERT_TRUE(nic.send_copy(frame, 64));
  dev.tx()->cons = 5;
  EXPECT_EQ(nic.reclaim_tx(), 0u);
  EXPECT_EQ(fault(nic, LnicFault::kTxConsBad), 1u);
}

TEST(LnicDriver, FloorIsRecordedOncePerNewTSent) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(false), record, &seen), LnicError::kNone);
  uint64_t t_sent, guest_tsc;
  EXPECT_FALSE(nic.floor_result(&t_sent, &guest_tsc));
  EXPECT_TRUE(nic.floor_arm());
  EXPECT_EQ(dev.reg(LNIC_REG_FLOOR_ARM), 1u);
  EXPECT_FALSE(nic.floor_arm());  // outstanding
  dev.interrupt();                // an RX interrupt before the device stamped: no floor
  EXPECT_TRUE(nic.floor_pending());
  EXPECT_EQ(dev.rx()->floor_guest_tsc, 0u);
  __atomic_store_n(&dev.rx()->floor_t_sent, 1234u, __ATOMIC_RELEASE);
  const uint64_t before = guest::rdtsc();
  dev.interrupt();
  EXPECT_FALSE(nic.floor_pending());
  ASSERT_TRUE(nic.floor_result(&t_sent, &guest_tsc));
  EXPECT_EQ(t_sent, 1234u);
  EXPECT_GE(guest_tsc, before);
  EXPECT_EQ(dev.rx()->floor_guest_tsc, guest_tsc);
  EXPECT_EQ(nic.stats().floor_irqs, 1u);
  EXPECT_EQ(nic.stats().irqs_empty, 1u);  // the floor interrupt is not "empty"
  dev.interrupt();                        // same t_sent: not a new floor
  EXPECT_EQ(nic.stats().floor_irqs, 1u);
  EXPECT_EQ(dev.rx()->floor_guest_tsc, guest_tsc);
  // Next floor, device did not clear floor_guest_tsc: still recognised.
  EXPECT_TRUE(nic.floor_arm());
  __atomic_store_n(&dev.rx()->floor_t_sent, 5678u, __ATOMIC_RELEASE);
  dev.interrupt();
  EXPECT_EQ(nic.stats().floor_irqs, 2u);
  ASSERT_TRUE(nic.floor_result(&t_sent, &guest_tsc));
  EXPECT_EQ(t_sent, 5678u);
  EXPECT_EQ(dev.rx()->floor_guest_tsc, guest_tsc);
}

TEST(LnicDriver, PollModeInterruptsOnlyAnswerFloors) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.post(0);
  __atomic_store_n(&dev.rx()->floor_t_sent, 99u, __ATOMIC_RELEASE);
  dev.interrupt();
  EXPECT_EQ(nic.stats().floor_irqs, 1u);
  EXPECT_TRUE(seen.frames.empty());  // the rings are the poller's
  EXPECT_EQ(fault(nic, LnicFault::kIrqWhilePolling), 0u);
  dev.interrupt();
  EXPECT_EQ(fault(nic, LnicFault::kIrqWhilePolling), 1u);
  EXPECT_EQ(g_eois, 2);
  EXPECT_EQ(nic.poll(), 1u);
}

TEST(LnicDriver, BringUpAgainReusesRingsAndKeepsOwnership) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  seen.keep = 1;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  const uint32_t rx_lo = dev.reg(LNIC_REG_RX_RING_LO);
  dev.post(9);
  nic.poll();
  EXPECT_TRUE(nic.owns(dev.page(9)));
  ASSERT_EQ(nic.bring_up(small(true), record, &seen), LnicError::kNone);
  EXPECT_EQ(dev.reg(LNIC_REG_RX_RING_LO), rx_lo);
  EXPECT_EQ(dev.rx()->prod, 0u);  // re-zeroed
  EXPECT_TRUE(nic.owns(dev.page(9)));
  EXPECT_TRUE(nic.return_page(dev.page(9), seen.frames[0].seq, 0));
  nic.flush();
  EXPECT_EQ(dev.take_returns().size(), 1u);
}

TEST(LnicDriver, RawAccessForHostileTests) {
  FakeDevice dev;
  Lnic nic;
  Seen seen;
  seen.keep = 1;
  ASSERT_EQ(init(nic, dev, 0, small(true), record, &seen), LnicError::kNone);
  dev.post(1);
  nic.poll();
  guest::LnicRaw raw(nic);
  raw.ret_post(dev.page(1) + 8, 0, 0);  // misaligned: the page stays ours
  EXPECT_TRUE(nic.owns(dev.page(1)));
  raw.ret_post(dev.page(1), 77, 0, /*keep_in_books=*/true);  // a stale seq: still ours
  EXPECT_TRUE(nic.owns(dev.page(1)));
  raw.ret_post(dev.page(1), 0, 0);
  raw.ret_post(dev.page(1), 0, 0);
  EXPECT_FALSE(nic.owns(dev.page(1)));
  EXPECT_EQ(dev.ret()->prod, 4u);
  raw.ring_ret_doorbell();
  const auto r = dev.take_returns();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].page_gpa, dev.page(1) + 8);
  EXPECT_EQ(r[1].seq, 77u);
}

}  // namespace
