// tests/fuzz/lnic_fuzz.cc — a hostile guest against a real Lnic on a real PagePool.
//
// No VM: guest RAM is host memory behind the GuestRam interface, the pool maps its
// chunks through a recording sink (recording_sink.h), the MSI line counts. The input
// is a sequence of guest and host actions: MMIO register accesses (any offset and
// width), raw stores into guest RAM (ring headers, entries, descriptors anywhere),
// frames arriving from the backend (a recording one or the real loopback), doorbells,
// worker passes, and a few well-behaved driver steps so the fuzzer reaches deep states
// (bring-up, consume a completion and return its page, post a TX descriptor).
//
// The return path (ABI v2): the driver returns a consumed completion's page naming its
// delivery {page_gpa, t_guest_irq, seq, reserved} — correct, or with seq, address or
// reserved mangled — and replays returns it made before (a stale return: its page may
// have been delivered again since, under a new seq).
//
// Invariants, after every action: register reads are sane (MAGIC, VERSION, STATUS);
// every completion the device posts names a page-aligned pool page of 1..4096 bytes in
// sequence order, owned by the guest; the device never asks the pool for something it
// does not own (pool-side ownership violations stay 0); frames delivered = frames
// returned + pages the guest holds; pool.audit() == "" (every page on exactly one list,
// counters agree); no page is owned twice: every delivery the driver holds (consumed
// or not, never correctly returned) names a distinct page that the pool says is the
// guest's — a stale, replayed or mangled return never takes a held page away. Once
// quiescent at the end, besides:
// every page of the window accounted exactly once (guest-owned + device-owned + free +
// unbacked = window; device-owned == 0; guest-owned == pages_with_guest()), the
// counters agree with that census, and after teardown every chunk is unmapped.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include "allocator/measure/tsc.h"
#include "allocator/page_pool.h"
#include "devices/lnic/backend/loopback.h"
#include "devices/lnic/lnic.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/recording_sink.h"
#include "tests/support/device_fakes.h"

namespace {

namespace alloc = labyrinth::alloc;
namespace measure = labyrinth::measure;
using labyrinth::devices::lnic::Backend;
using labyrinth::devices::lnic::FrameSink;
using labyrinth::devices::lnic::Lnic;
using labyrinth::devices::test::FakeRam;
using labyrinth::devices::test::RecordingMsi;
using labyrinth::fuzz::RecordingSink;

constexpr uint64_t kRamSize = 1 << 20;
constexpr uint64_t kWindow = 4ull << 30;
constexpr uint64_t kWindowSize = 1ull << 30;
constexpr uint64_t kChunk = 64 << 10;  // 16 pages: exhaustion is easy to reach
constexpr uint32_t kMaxChunks = 2;
constexpr alloc::OwnerId kDev = 0x1000, kGuest = 0x2000;
// The well-behaved driver's layout (the fuzzer may place rings anywhere else).
constexpr uint64_t kRx = 0x10000, kRet = 0x30000, kTx = 0x50000, kTxBuf = 0x70000;

class RecordingBackend final : public Backend {
 public:
  std::string_view name() const override { return "recording"; }
  void start(FrameSink&) override {}
  void stop() override {}
  bool transmit(std::span<const std::byte> frame) override {
    FUZZ_CHECK(!frame.empty() && frame.size() <= LNIC_FRAME_MAX, "transmit of %zu bytes",
               frame.size());
    ++sent;
    return true;
  }
  uint64_t sent = 0;
};

constexpr uint32_t kRegs[] = {
    LNIC_REG_MAGIC,          LNIC_REG_VERSION,       LNIC_REG_FEATURES,     LNIC_REG_STATUS,
    LNIC_REG_CONTROL,        LNIC_REG_CONFIG_ERROR,  LNIC_REG_MAC_LO,       LNIC_REG_MAC_HI,
    LNIC_REG_RX_RING_LO,     LNIC_REG_RX_RING_HI,    LNIC_REG_RX_RING_SIZE, LNIC_REG_RET_RING_LO,
    LNIC_REG_RET_RING_HI,    LNIC_REG_RET_RING_SIZE, LNIC_REG_TX_RING_LO,   LNIC_REG_TX_RING_HI,
    LNIC_REG_TX_RING_SIZE,
    LNIC_REG_POOL_BASE_LO,  // ABI v3: where the MSI message registers were
    LNIC_REG_POOL_SIZE_LO,   LNIC_REG_PAGES_HELD,    LNIC_REG_RET_DOORBELL, LNIC_REG_TX_DOORBELL,
    LNIC_REG_FLOOR_ARM,      LNIC_REG_VIOLATIONS,  // appended: the seeds' register choices
    LNIC_REG_DRIVER_FEATURES};                     // keep their meaning
constexpr uint32_t kValues[] = {0,
                                1,
                                2,
                                3,
                                8,
                                16,
                                4096,
                                8192,
                                kRx,
                                kRet,
                                kTx,
                                kTxBuf,
                                0x1000,
                                0x10080,
                                0xFFFFF,
                                0xFEE00000,
                                0x40,
                                0xFFFFFFFF,
                                LNIC_CTRL_ENABLE,
                                LNIC_CTRL_RESET,
                                LNIC_CTRL_ENABLE | LNIC_CTRL_RESET};

struct Harness {
  explicit Harness(bool zero_on_free, bool loopback) : sink(kWindow, kWindowSize) {
    alloc::PoolConfig pc;
    pc.window_gpa = kWindow;
    pc.window_size = kWindowSize;
    pc.chunk_bytes = kChunk;
    pc.initial_chunks = 1;
    pc.max_chunks = kMaxChunks;
    pc.min_pages = 2;
    pc.low_pages = 4;
    pc.high_pages = 8;
    pc.cache_capacity = 4;
    pc.start_worker = false;  // the input drives run_worker_once(): deterministic
    pc.shrink_delay = std::chrono::milliseconds(0);
    pc.zero_policy = zero_on_free ? alloc::ZeroPolicy::on_free : alloc::ZeroPolicy::worker;
    auto p = alloc::PagePool::create(pc, sink);
    FUZZ_CHECK(p.has_value(), "PagePool::create: %s",
               std::string(alloc::to_string(p.error())).c_str());
    pool = std::move(*p);
    auto c = pool->attach_cache();
    FUZZ_CHECK(c.has_value(), "attach_cache");
    cache = *c;
    std::unique_ptr<Backend> be;
    if (loopback) {
      be = std::make_unique<labyrinth::devices::lnic::LoopbackBackend>(io);
    } else {
      auto r = std::make_unique<RecordingBackend>();
      recording = r.get();
      be = std::move(r);
    }
    labyrinth::devices::lnic::LnicConfig cfg;
    cfg.id = "fuzz0";
    cfg.device_owner = kDev;
    cfg.guest_owner = kGuest;
    nic = std::make_shared<Lnic>(cfg, io, *pool, cache, ram, lines, std::move(be));
    nic->start();
  }
  ~Harness() {
    nic->stop();
    settle();
    nic.reset();
    pool->detach_cache(cache);
    pool.reset();
    FUZZ_CHECK(sink.live() == 0, "%zu chunks still mapped after the pool is gone", sink.live());
  }

  void settle() {
    io.restart();
    io.poll();
  }
  void wr(uint64_t off, std::span<const uint8_t> bytes) { nic->write(off, bytes); }
  void wr32(uint32_t reg, uint32_t v) {
    wr(reg, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  }
  uint32_t rd32(uint32_t reg) {
    uint32_t v = 0;
    nic->read(reg, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  lnic_ring_header* hdr(uint64_t ring) { return ram.at<lnic_ring_header>(ring); }

  // Checks completions the device posted since the last call (well-behaved layout only).
  void check_new_completions(uint64_t returned_before) {
    if (!canned_size) return;
    const uint32_t prod = hdr(kRx)->prod;
    const bool returns_happened = nic->metrics().pages_returned.get() != returned_before;
    for (; seen_prod != prod; ++seen_prod) {
      const auto* c =
          ram.at<lnic_rx_completion>(kRx + sizeof(lnic_ring_header) +
                                     (seen_prod & (canned_size - 1)) * sizeof(lnic_rx_completion));
      FUZZ_CHECK(c->page_gpa % alloc::kPageSize == 0 && c->page_gpa >= kWindow &&
                     c->page_gpa < kWindow + kMaxChunks * kChunk,
                 "completion names %#llx", static_cast<unsigned long long>(c->page_gpa));
      FUZZ_CHECK(c->len >= 1 && c->len <= LNIC_FRAME_MAX, "completion len %u", c->len);
      FUZZ_CHECK(c->seq == next_seq, "completion seq %llu, expected %llu",
                 static_cast<unsigned long long>(c->seq),
                 static_cast<unsigned long long>(next_seq));
      ++next_seq;
      held[c->seq] = c->page_gpa;
      if (!returns_happened) {
        auto page = pool->lookup_gpa(c->page_gpa);
        FUZZ_CHECK(page && pool->owner_of(*page).value_or(0) == kGuest,
                   "completion %llu names a page the guest does not own",
                   static_cast<unsigned long long>(c->seq));
      }
    }
  }

  // The deliveries the driver holds (well-behaved layout only): distinct pages, each the
  // guest's in the pool. A stale or replayed return that freed or moved one would show.
  void check_held() {
    const std::string audit = pool->audit();
    FUZZ_CHECK(audit.empty(), "pool audit: %s", audit.c_str());
    if (!canned_size) return;
    FUZZ_CHECK(held.size() <= nic->pages_with_guest(), "the driver holds %zu pages, the NIC %llu",
               held.size(), static_cast<unsigned long long>(nic->pages_with_guest()));
    std::set<uint64_t> pages;
    for (const auto& [seq, gpa] : held) {
      FUZZ_CHECK(pages.insert(gpa).second, "page %#llx delivered twice while held (seq %llu)",
                 static_cast<unsigned long long>(gpa), static_cast<unsigned long long>(seq));
      auto page = pool->lookup_gpa(gpa);
      FUZZ_CHECK(page && pool->owner_of(*page).value_or(0) == kGuest,
                 "held delivery %llu (page %#llx) is no longer the guest's: %s",
                 static_cast<unsigned long long>(seq), static_cast<unsigned long long>(gpa),
                 page ? "another owner" : std::string(alloc::to_string(page.error())).c_str());
    }
  }

  void check_running_invariants() {
    const auto& m = nic->metrics();
    const auto st = pool->stats();
    FUZZ_CHECK(st.violation_not_owner == 0 && st.violation_double_free == 0 &&
                   st.violation_stale == 0 && st.violation_foreign_pool == 0,
               "the device made the pool see an ownership violation (%llu/%llu/%llu)",
               static_cast<unsigned long long>(st.violation_not_owner),
               static_cast<unsigned long long>(st.violation_double_free),
               static_cast<unsigned long long>(st.violation_stale));
    FUZZ_CHECK(m.rx_frames.get() == m.pages_returned.get() + nic->pages_with_guest(),
               "delivered %llu != returned %llu + held %llu",
               static_cast<unsigned long long>(m.rx_frames.get()),
               static_cast<unsigned long long>(m.pages_returned.get()),
               static_cast<unsigned long long>(nic->pages_with_guest()));
    FUZZ_CHECK(st.chunks <= kMaxChunks && st.total_pages == st.chunks * (kChunk / 4096),
               "chunks %llu pages %llu", static_cast<unsigned long long>(st.chunks),
               static_cast<unsigned long long>(st.total_pages));
  }

  // The census at quiescence: every page of the window exactly once.
  void check_quiescent() {
    const std::string audit = pool->audit();
    FUZZ_CHECK(audit.empty(), "pool audit: %s", audit.c_str());
    const auto st = pool->stats();  // before the census: lookups of holes count as violations
    uint64_t guest = 0, device = 0, other = 0, free = 0, unbacked = 0;
    const uint64_t window_pages = kMaxChunks * kChunk / alloc::kPageSize;
    for (uint64_t i = 0; i < window_pages; ++i) {
      auto page = pool->lookup_gpa(kWindow + i * alloc::kPageSize);
      if (!page) {  // lookup_gpa finds allocated pages only
        FUZZ_CHECK(page.error() == alloc::Error::out_of_window ||
                       page.error() == alloc::Error::double_free,
                   "lookup error %s", std::string(alloc::to_string(page.error())).c_str());
        ++(page.error() == alloc::Error::double_free ? free : unbacked);
        continue;
      }
      const auto owner = pool->owner_of(*page);
      FUZZ_CHECK(owner.has_value(), "owner_of a fresh handle failed");
      if (*owner == kGuest)
        ++guest;
      else if (*owner == kDev)
        ++device;
      else
        ++other;
    }
    FUZZ_CHECK(other == 0, "%llu pages owned by a stranger",
               static_cast<unsigned long long>(other));
    FUZZ_CHECK(device == 0, "%llu pages left owned by the device when quiescent",
               static_cast<unsigned long long>(device));
    FUZZ_CHECK(guest == nic->pages_with_guest(), "guest owns %llu pages, the NIC thinks %llu",
               static_cast<unsigned long long>(guest),
               static_cast<unsigned long long>(nic->pages_with_guest()));
    FUZZ_CHECK(guest + device + free == st.total_pages && unbacked == window_pages - st.total_pages,
               "census %llu+%llu+%llu (+%llu unbacked) vs %llu pages",
               static_cast<unsigned long long>(guest), static_cast<unsigned long long>(device),
               static_cast<unsigned long long>(free), static_cast<unsigned long long>(unbacked),
               static_cast<unsigned long long>(st.total_pages));
    FUZZ_CHECK(st.in_use == guest + device, "stats.in_use %llu vs census %llu",
               static_cast<unsigned long long>(st.in_use),
               static_cast<unsigned long long>(guest + device));
  }

  RecordingSink sink;
  std::unique_ptr<alloc::PagePool> pool;
  alloc::PageCache* cache = nullptr;
  boost::asio::io_context io;
  FakeRam ram{0, kRamSize};
  RecordingMsi msi_rx, msi_tx;
  std::array<labyrinth::devices::MsiLine*, LNIC_MSIX_VECTORS> lines{&msi_rx, &msi_tx};
  RecordingBackend* recording = nullptr;
  std::shared_ptr<Lnic> nic;
  uint32_t canned_size = 0;  // non-zero: the rings are the well-behaved layout
  uint32_t seen_prod = 0;
  uint64_t next_seq = 0;
  uint32_t guest_cons = 0, ret_prod = 0, tx_prod = 0;
  std::map<uint64_t, uint64_t> held;      // seq -> page: delivered, not correctly returned
  std::vector<lnic_return> past_returns;  // correct returns made, for replays (bounded)

  // Whether RETURN entry r names a delivery the driver holds — page and seq exactly, as
  // the device requires (it ignores `reserved`) — and so gives it back; the model
  // forgets it then.
  bool settles(const lnic_return& r) {
    auto it = held.find(r.seq);
    if (it == held.end() || it->second != r.page_gpa) return false;
    held.erase(it);
    return true;
  }

  // The driver writes one RETURN entry and maybe rings the doorbell.
  void post_return(const lnic_return& r, bool doorbell) {
    std::memcpy(ram.at<uint8_t>(kRet + sizeof(lnic_ring_header) +
                                (ret_prod & (canned_size - 1)) * sizeof(lnic_return)),
                &r, sizeof r);
    hdr(kRet)->prod = ++ret_prod;
    if (doorbell) wr32(LNIC_REG_RET_DOORBELL, 1);  // posted to the event loop
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  FuzzedDataProvider in(data, size);
  Harness h(in.ConsumeBool(), in.ConsumeBool());

  int steps = 0;
  while (in.remaining_bytes() > 0 && ++steps <= 512) {
    const uint64_t returned_before = h.nic->metrics().pages_returned.get();
    switch (in.ConsumeIntegralInRange<int>(0, 12)) {
      case 0: {  // MMIO write: a known register and value, or anything at all
        if (in.ConsumeBool()) {
          const uint32_t reg = kRegs[in.ConsumeIntegralInRange<size_t>(0, std::size(kRegs) - 1)];
          const uint32_t v =
              in.ConsumeBool()
                  ? kValues[in.ConsumeIntegralInRange<size_t>(0, std::size(kValues) - 1)]
                  : in.ConsumeIntegral<uint32_t>();
          h.wr32(reg, v);
          if (reg == LNIC_REG_CONTROL ||
              (reg >= LNIC_REG_RX_RING_LO && reg <= LNIC_REG_TX_RING_SIZE))
            h.canned_size = 0;  // the layout is no longer the known one
        } else {
          const uint64_t off = in.ConsumeIntegralInRange<uint64_t>(0, LNIC_MMIO_SIZE);
          const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 8));
          h.wr(off, bytes);
          h.canned_size = 0;
        }
        break;
      }
      case 1: {  // MMIO read
        const uint32_t reg = kRegs[in.ConsumeIntegralInRange<size_t>(0, std::size(kRegs) - 1)];
        const uint32_t v = h.rd32(reg);
        if (reg == LNIC_REG_MAGIC) FUZZ_CHECK(v == LNIC_MAGIC, "MAGIC %#x", v);
        if (reg == LNIC_REG_VERSION) FUZZ_CHECK(v == LNIC_VERSION, "VERSION %#x", v);
        if (reg == LNIC_REG_STATUS) {
          FUZZ_CHECK(v == 0 || v == LNIC_STATUS_RUNNING || v == LNIC_STATUS_CONFIG_ERROR ||
                         v == LNIC_STATUS_STOPPING ||
                         v == (LNIC_STATUS_RUNNING | LNIC_STATUS_RX_STOPPED),
                     "STATUS %#x", v);
          FUZZ_CHECK(((v & LNIC_STATUS_RUNNING) != 0) == h.nic->running(), "running() disagrees");
        }
        std::array<uint8_t, 8> odd{};
        const size_t width = in.ConsumeIntegralInRange<size_t>(0, 8);
        h.nic->read(in.ConsumeIntegralInRange<uint64_t>(0, LNIC_MMIO_SIZE),
                    std::span<uint8_t>(odd.data(), width));
        break;
      }
      case 2: {  // a guest store anywhere in RAM (ring indices, entries, flags)
        const uint64_t gpa = in.ConsumeIntegralInRange<uint64_t>(0, kRamSize - 8) & ~uint64_t{3};
        const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(1, 8));
        if (bytes.empty()) break;  // the input ran out
        std::memcpy(h.ram.at<uint8_t>(gpa), bytes.data(), bytes.size());
        if (gpa + 8 > kRx && gpa < kTxBuf) h.canned_size = 0;  // rings no longer the driver's
        break;
      }
      case 3: {  // a store into one of the known rings' headers or first entries
        static constexpr uint64_t kRings[] = {kRx, kRet, kTx};
        const uint64_t ring = kRings[in.ConsumeIntegralInRange<size_t>(0, 2)];
        const uint64_t off = in.ConsumeIntegralInRange<uint64_t>(0, 512) & ~uint64_t{3};
        const uint32_t v = in.ConsumeIntegral<uint32_t>();
        std::memcpy(h.ram.at<uint8_t>(ring + off), &v, 4);
        h.canned_size = 0;  // the rings are no longer the driver's
        break;
      }
      case 4: {  // a frame from the backend (the interrupt path)
        std::vector<std::byte> frame(in.ConsumeIntegralInRange<size_t>(0, LNIC_FRAME_MAX + 8),
                                     std::byte{0x5A});
        const int n = in.ConsumeIntegralInRange<int>(1, 24);
        for (int i = 0; i < n; ++i) h.nic->receive(frame, measure::rdtsc());
        if (in.ConsumeBool()) h.nic->flush();
        break;
      }
      case 5:
        h.nic->on_return_doorbell();
        break;
      case 6:
        h.nic->on_tx_doorbell();
        break;
      case 7:
        h.pool->run_worker_once();
        break;
      case 8: {  // well-behaved bring-up
        const uint32_t sz = 8u << in.ConsumeIntegralInRange<int>(0, 3);
        std::memset(h.ram.at<uint8_t>(kRx), 0, kTxBuf - kRx);
        h.wr32(LNIC_REG_CONTROL, LNIC_CTRL_RESET);
        h.settle();
        h.wr32(LNIC_REG_RX_RING_LO, kRx);
        h.wr32(LNIC_REG_RX_RING_HI, 0);
        h.wr32(LNIC_REG_RX_RING_SIZE, sz);
        h.wr32(LNIC_REG_RET_RING_LO, kRet);
        h.wr32(LNIC_REG_RET_RING_HI, 0);
        h.wr32(LNIC_REG_RET_RING_SIZE, sz);
        h.wr32(LNIC_REG_TX_RING_LO, kTx);
        h.wr32(LNIC_REG_TX_RING_HI, 0);
        h.wr32(LNIC_REG_TX_RING_SIZE, sz);
        h.wr32(LNIC_REG_CONTROL, LNIC_CTRL_ENABLE);
        FUZZ_CHECK(h.rd32(LNIC_REG_STATUS) == LNIC_STATUS_RUNNING, "a valid bring-up failed");
        h.canned_size = sz;
        h.seen_prod = h.guest_cons = h.ret_prod = h.tx_prod = 0;
        h.held.clear();  // a reset ends the old deliveries' model (the pages stay counted)
        h.past_returns.clear();
        h.next_seq = h.nic->metrics().rx_frames.get();  // seq continues across resets
        break;
      }
      case 9: {  // the driver consumes one completion and returns its page (maybe mangled)
        if (!h.canned_size || h.guest_cons == h.hdr(kRx)->prod) break;
        const auto* c = h.ram.at<lnic_rx_completion>(kRx + sizeof(lnic_ring_header) +
                                                     (h.guest_cons & (h.canned_size - 1)) *
                                                         sizeof(lnic_rx_completion));
        lnic_return r{c->page_gpa, in.ConsumeBool() ? measure::rdtsc() : 0, c->seq, 0};
        switch (in.ConsumeIntegralInRange<int>(0, 5)) {
          case 1:
            r.seq += in.ConsumeIntegral<uint8_t>();
            break;
          case 2:
            r.page_gpa += in.ConsumeIntegral<uint16_t>();
            break;
          case 3:
            r.page_gpa = in.ConsumeIntegral<uint64_t>();
            break;
          case 4:
            r.reserved = in.ConsumeIntegral<uint64_t>();
            break;
          default:
            break;  // a correct return
        }
        ++h.guest_cons;
        h.hdr(kRx)->cons = h.guest_cons;
        if (h.settles(r) && h.past_returns.size() < 64) h.past_returns.push_back(r);
        h.post_return(r, in.ConsumeBool());
        break;
      }
      case 12: {  // a replayed (stale) return: one the driver made before, maybe mangled
        if (!h.canned_size || h.past_returns.empty()) break;
        lnic_return r =
            h.past_returns[in.ConsumeIntegralInRange<size_t>(0, h.past_returns.size() - 1)];
        if (in.ConsumeBool()) r.seq += in.ConsumeIntegralInRange<uint64_t>(1, 64);
        (void)h.settles(r);  // a replay that names a delivery held now is a valid return of it
        h.post_return(r, in.ConsumeBool());
        break;
      }
      case 10: {  // the driver posts a TX descriptor (RAM buffer or a held page)
        if (!h.canned_size) break;
        lnic_tx_desc d{};
        d.buf_gpa = in.ConsumeBool()
                        ? kTxBuf + in.ConsumeIntegralInRange<uint64_t>(0, 8192)
                        : kWindow + in.ConsumeIntegralInRange<uint64_t>(0, kMaxChunks * kChunk);
        d.len = in.ConsumeIntegralInRange<uint32_t>(0, LNIC_FRAME_MAX + 1);
        std::memcpy(h.ram.at<uint8_t>(kTx + sizeof(lnic_ring_header) +
                                      (h.tx_prod & (h.canned_size - 1)) * sizeof(lnic_tx_desc)),
                    &d, sizeof d);
        h.hdr(kTx)->prod = ++h.tx_prod;
        h.wr32(LNIC_REG_TX_DOORBELL, 1);
        break;
      }
      case 11:
        h.nic->flush();
        break;
      default:
        break;
    }
    h.settle();
    h.check_new_completions(returned_before);
    if (!h.canned_size) h.held.clear(), h.past_returns.clear();  // layout unknown: no model
    h.check_running_invariants();
    h.check_held();
  }
  h.nic->stop();
  h.settle();
  h.check_running_invariants();
  h.check_quiescent();
  return 0;
}
