// tests/fuzz/virtio_fuzz.cc — a hostile driver against a real VirtioNet behind a real
// VirtioPciTransport, on real guest RAM, with a real fd as its TAP.
//
// No VM: guest RAM is a vmm::GuestMemory (anonymous mappings, as in a VM: two ranges with
// a hole, [0, 64 KiB) and [128 KiB, 192 KiB)) reached through vmm::GuestRamView, the
// same translation the VMM gives the device; the TAP is one end of a SOCK_SEQPACKET
// socketpair (one read is one frame, as on a TAP), the harness holds the other end; the
// MSI lines count. The input, read front to back (tests/fuzz/virtio_seeds.py writes the
// seeds), is a sequence of driver and host actions: BAR accesses (common config, ISR,
// device config, notify, MSI-X at any offset and width 1..8, or known registers with
// chosen values), PCI config accesses, device status writes, descriptors written into the
// tables (addresses in RAM, in the hole, straddling the end, wrapping, onto the rings; any
// length, flags incl. INDIRECT, any next), avail ring entries, avail.idx jumps and
// flags, raw stores anywhere in RAM, frames arriving from the backend (0 to 65600 bytes),
// kicks, and well-formed driver steps (bring-up on a known layout, TX and RX chains).
//
// Invariants, around every run of the device's event loop (all device work happens
// there): the device changed guest RAM only in the used rings of its queues and in
// buffers of RX descriptors marked device-writable; the errors it counts are known
// QueueError values; every frame it sent reached the TAP's peer (frames and bytes
// agree with tx_frames/tx_bytes); it never delivered more frames than arrived. On the
// known layout (after a well-formed bring-up, until a reset, a different activation,
// a store of the harness into a used ring, or an RX buffer over one of the rings, which
// the device may then rewrite): used.idx only moves forward, by at most
// a queue's worth; every new used element names a head < size; its length is 0 for TX
// and for a chain a reference walk (the spec's rules, from RAM as it was before the
// run) finds malformed or with a readable part, else 12 + a frame of at most 1514
// bytes that fits the chain's writable bytes; every chain given back is counted
// exactly once (used entries = frames + drops + malformed chains with a valid head);
// and a queue whose driver did not set VIRTQ_AVAIL_F_NO_INTERRUPT got an interrupt
// when its used ring changed (virtio 1.2, 2.7.10). A corrupt avail.idx (more than a
// queue ahead) stops the device once: needs_reset counts each one, device_status reads
// DEVICE_NEEDS_RESET and the ISR's configuration bit is set; a stopped device changes
// no RAM and no counter until the reset (virtio 1.2, 2.1.2). At the end: the same device, reset
// and brought up again by the book, sends a well-formed TX frame intact and delivers
// a marker frame from the TAP into a posted RX buffer.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>

#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/virtio_abi.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/support/device_fakes.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/guest_ram_view.h"

namespace {

namespace v = labyrinth::devices::virtio;
using labyrinth::devices::MsiLine;
using labyrinth::devices::test::RecordingMsi;
using labyrinth::vmm::GpaRange;
using labyrinth::vmm::GuestMemory;
using labyrinth::vmm::GuestRamView;
using ull = unsigned long long;

constexpr GpaRange kRam[] = {{0x0, 0x10000}, {0x20000, 0x10000}};
constexpr uint64_t kHole = 0x10000;
constexpr uint32_t kBar = 0xD1000000u;
constexpr uint8_t kMsixCap = 0x84;
constexpr size_t kHdr = sizeof(v::VirtioNetHdr);
constexpr uint8_t kFramePattern = 0x5A;
// The known layout: queue q's rings at kRing[q], buffers from kBuf.
struct Rings {
  uint64_t desc, avail, used;
};
constexpr Rings kRing[2] = {{0x1000, 0x2000, 0x3000}, {0x4000, 0x5000, 0x6000}};
constexpr uint64_t kBuf = 0x8000;

// The input, front to back; 0 once it has run out.
class Input {
 public:
  explicit Input(std::span<const uint8_t> d) : d_(d) {}
  bool empty() const { return pos_ >= d_.size(); }
  template <class T>
  T get() {
    T v{};
    const size_t n = std::min(sizeof v, d_.size() - std::min(pos_, d_.size()));
    if (n != 0) std::memcpy(&v, d_.data() + pos_, n);
    pos_ += sizeof v;
    return v;
  }

 private:
  std::span<const uint8_t> d_;
  size_t pos_ = 0;
};

struct QueueRegs {
  bool enabled = false;
  uint16_t size = 0;
  uint64_t desc = 0, avail = 0, used = 0;
  bool operator==(const QueueRegs&) const = default;
};

struct Interval {
  uint64_t lo, hi;  // [lo, hi)
  bool overlaps(const Interval& o) const { return lo < o.hi && o.lo < hi; }
};

// Chains given back on a used ring, by the counters (each exactly once).
uint64_t chains_returned(const v::NetMetrics& m) {
  return m.rx_frames.get() + m.rx_drop_too_small.get() + m.tx_frames.get() +
         m.tx_drop_backend.get() + m.tx_drop_malformed.get() + m.bad_chains_total() -
         m.bad_chains[static_cast<size_t>(v::QueueError::bad_head)].get() -
         m.bad_chains[static_cast<size_t>(v::QueueError::avail_idx_jump)].get();
}

struct Harness {
  Harness() {
    auto m = GuestMemory::create(kRam);
    FUZZ_CHECK(m.has_value(), "GuestMemory::create failed");
    mem = std::move(*m);
    view = std::make_unique<GuestRamView>(*mem);
    int sv[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
               "socketpair");
    peer = sv[1];
    net = std::make_shared<v::VirtioNet>(v::NetConfig{"fuzz0", mac}, io,
                                         labyrinth::devices::TapFd(sv[0], "fuzz"));
    t = std::make_shared<v::VirtioPciTransport>(net, *view, kBar,
                                                std::vector<MsiLine*>{&msi[0], &msi[1], &msi[2]});
    snap.resize(std::size(kRam));
  }
  ~Harness() {
    net->stop();
    io.restart();
    io.poll();
    ::close(peer);
  }

  // --- guest RAM --------------------------------------------------------------------
  std::span<std::byte> host(const GpaRange& r) const {
    return mem->translate(r.gpa, r.size).value();
  }
  template <class T>
  void put(uint64_t gpa, const T& val) {
    if (auto b = mem->translate(gpa, sizeof val)) std::memcpy(b->data(), &val, sizeof val);
    note_store(gpa, sizeof val);
  }
  template <class T>
  T get(uint64_t gpa) const {
    T val{};
    if (auto b = mem->translate(gpa, sizeof val)) std::memcpy(&val, b->data(), sizeof val);
    return val;
  }
  // From the snapshot taken before the last run of the loop (the device's view then).
  template <class T>
  bool get_before(uint64_t gpa, T& val) const {
    for (size_t i = 0; i < std::size(kRam); ++i) {
      if (gpa >= kRam[i].gpa && gpa - kRam[i].gpa <= kRam[i].size - sizeof val) {
        std::memcpy(&val, snap[i].data() + (gpa - kRam[i].gpa), sizeof val);
        return true;
      }
    }
    return false;
  }
  // The harness (the driver) wrote RAM: a store into a used ring ends the model.
  void note_store(uint64_t gpa, uint64_t len) {
    if (!model) return;
    const Interval s{gpa, gpa + len};
    for (const auto& r : kRing) {
      if (s.overlaps({r.used, r.used + v::used_ring_bytes(model->size)})) model.reset();
    }
  }

  // --- registers --------------------------------------------------------------------
  void bar_write(uint64_t off, uint64_t val, size_t width) {
    std::array<uint8_t, 8> b{};
    std::memcpy(b.data(), &val, 8);
    t->write(off, std::span<const uint8_t>(b.data(), width));
  }
  uint64_t bar_read(uint64_t off, size_t width) {
    std::array<uint8_t, 8> b{};
    t->read(off, std::span<uint8_t>(b.data(), width));
    uint64_t val = 0;
    std::memcpy(&val, b.data(), 8);
    return val;
  }
  QueueRegs queue_regs(uint16_t q) {
    using namespace v::common;
    const auto sel = static_cast<uint16_t>(bar_read(kQueueSelect, 2));
    bar_write(kQueueSelect, q, 2);
    QueueRegs r;
    r.enabled = bar_read(kQueueEnable, 2) == 1;
    r.size = static_cast<uint16_t>(bar_read(kQueueSize, 2));
    r.desc = bar_read(kQueueDesc, 8);
    r.avail = bar_read(kQueueDriver, 8);
    r.used = bar_read(kQueueDevice, 8);
    bar_write(kQueueSelect, sel, 2);
    return r;
  }
  void status(uint8_t s) { bar_write(v::common::kDeviceStatus, s, 1); }
  void kick(uint16_t q, size_t width = 2) {
    bar_write(v::VirtioPciTransport::kNotifyOff + v::VirtioPciTransport::kNotifyMultiplier * q, q,
              width);
  }

  // --- the well-formed driver -------------------------------------------------------
  // The Linux sequence on the known layout: reset, features, MSI-X (vector 0 config, 1 RX,
  // 2 TX), both queues of `size`, DRIVER_OK. Starts the model.
  void bring_up(uint16_t size) {
    using namespace v::common;
    status(0);
    settle();
    for (const auto& r : kRing) {
      auto b = mem->translate(r.desc, 0x3000).value();
      std::memset(b.data(), 0, b.size());
    }
    status(v::kStatusAcknowledge | v::kStatusDriver);
    const uint64_t f = v::kFVersion1 | v::kNetFMac | v::kNetFStatus;
    bar_write(kDriverFeatureSelect, 0, 4);
    bar_write(kDriverFeature, static_cast<uint32_t>(f), 4);
    bar_write(kDriverFeatureSelect, 1, 4);
    bar_write(kDriverFeature, f >> 32, 4);
    status(v::kStatusAcknowledge | v::kStatusDriver | v::kStatusFeaturesOk);
    FUZZ_CHECK((bar_read(kDeviceStatus, 1) & v::kStatusFeaturesOk) != 0, "FEATURES_OK refused");
    t->write_config(kMsixCap, 0x80000000u, 0xFFFF0000u);
    for (uint32_t vec = 0; vec < 3; ++vec) {
      const uint64_t e = v::VirtioPciTransport::kMsixTableOff + 16 * vec;
      bar_write(e, 0xFEE00000u, 4);
      bar_write(e + 4, 0, 4);
      bar_write(e + 8, 0x30 + vec, 4);
      bar_write(e + 12, 0, 4);
    }
    bar_write(kMsixConfig, 0, 2);
    for (uint16_t q = 0; q < 2; ++q) {
      bar_write(kQueueSelect, q, 2);
      bar_write(kQueueSize, size, 2);
      bar_write(kQueueDesc, kRing[q].desc, 8);
      bar_write(kQueueDriver, kRing[q].avail, 8);
      bar_write(kQueueDevice, kRing[q].used, 8);
      bar_write(kQueueMsixVector, q + 1u, 2);
      bar_write(kQueueEnable, 1, 2);
      FUZZ_CHECK(bar_read(kQueueEnable, 2) == 1, "a valid queue %u of size %u refused", q, size);
    }
    status(v::kStatusAcknowledge | v::kStatusDriver | v::kStatusFeaturesOk | v::kStatusDriverOk);
    settle();
    FUZZ_CHECK(net->active(), "a valid bring-up did not activate the device");
    model = Model{size, {0, 0}};
  }
  void desc(uint16_t q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    put(kRing[q].desc + 16 * uint64_t{static_cast<uint16_t>(i & (layout_size() - 1))},
        v::VirtqDesc{addr, len, flags, next});
  }
  void offer(uint16_t q, uint16_t head) {
    const auto idx = get<uint16_t>(kRing[q].avail + 2);
    put<uint16_t>(
        kRing[q].avail + 4 + 2 * uint64_t{static_cast<uint16_t>(idx & (layout_size() - 1))}, head);
    put<uint16_t>(kRing[q].avail + 2, static_cast<uint16_t>(idx + 1));
  }
  uint16_t layout_size() const { return model ? model->size : 16; }
  // A chain of n segments from head on, consecutive buffers from kBuf + off.
  uint16_t chain(uint16_t q, Input& in, bool rx) {
    const auto head = static_cast<uint16_t>(in.get<uint8_t>() & (layout_size() - 1));
    const int n = 1 + in.get<uint8_t>() % 3;
    uint64_t addr = kBuf + (rx ? 0x4000 : 0) + (in.get<uint8_t>() & 0x3F) * 16ull;
    for (int s = 0; s < n; ++s) {
      const uint32_t len = in.get<uint16_t>() % 2048;
      if (!rx && s == 0) put(addr, v::VirtioNetHdr{});
      const bool last = s == n - 1;
      desc(q, static_cast<uint16_t>(head + s), addr, len,
           static_cast<uint16_t>((rx ? v::kDescFWrite : 0) | (last ? 0 : v::kDescFNext)),
           static_cast<uint16_t>((head + s + 1) & (layout_size() - 1)));
      addr += len;
    }
    return head;
  }
  void send_frames(size_t n, size_t size, uint8_t fill) {
    std::vector<uint8_t> f(size, fill);
    for (size_t i = 0; i < n; ++i) {
      if (::send(peer, f.data(), f.size(), MSG_DONTWAIT) == static_cast<ssize_t>(size) &&
          size != 0) {
        ++frames_sent;
      }
    }
  }

  // --- the device's event loop, and the checks around it ----------------------------
  struct Model {  // the known layout, as the device uses it
    uint16_t size;
    std::array<uint16_t, 2> used;  // used.idx the device last published
  };

  void settle() {
    for (size_t i = 0; i < std::size(kRam); ++i) {
      auto h = host(kRam[i]);
      snap[i].assign(h.begin(), h.end());
    }
    const auto& m = net->metrics();
    const Before before{
        .returned = chains_returned(m),
        .irqs = m.irqs.get(),
        .tx_frames = m.tx_frames.get(),
        .tx_bytes = m.tx_bytes.get(),
        .rx_handled = m.rx_frames.get() + m.rx_drop_too_small.get() + m.rx_drop_oversize.get(),
        .bad_chains = m.bad_chains_total(),
        .jumps = m.bad_chains[kJump].get(),
        .stops = m.needs_reset.get(),
        .activations = t->metrics().activations.load(),
        .resets = t->metrics().resets.load(),
        .stopped = net->needs_reset(),
    };
    io.restart();
    io.poll();
    check_after_run(before);
  }

  static constexpr auto kJump = static_cast<size_t>(v::QueueError::avail_idx_jump);
  struct Before {  // the device's counters and state before a run of its loop
    uint64_t returned, irqs, tx_frames, tx_bytes, rx_handled, bad_chains, jumps, stops;
    uint64_t activations, resets;
    bool stopped;  // DEVICE_NEEDS_RESET: a corrupt ring stopped the current activation
  };

  void check_after_run(const Before& was) {
    const uint64_t returned = was.returned, irqs = was.irqs, tx_frames = was.tx_frames,
                   tx_bytes = was.tx_bytes, activations = was.activations, resets = was.resets;
    const auto& m = net->metrics();
    check_needs_reset(was);
    // Errors are typed: only QueueError values are ever counted.
    FUZZ_CHECK(m.bad_chains[0].get() == 0, "bad_chains[0] counted");
    for (size_t e = static_cast<size_t>(v::QueueError::indirect) + 1; e < m.bad_chains.size();
         ++e) {
      FUZZ_CHECK(m.bad_chains[e].get() == 0, "bad_chains[%zu] counted", e);
    }
    FUZZ_CHECK(
        m.rx_frames.get() + m.rx_drop_too_small.get() + m.rx_drop_oversize.get() <= frames_sent,
        "more frames handled (%llu+%llu+%llu) than arrived (%llu)",
        static_cast<ull>(m.rx_frames.get()), static_cast<ull>(m.rx_drop_too_small.get()),
        static_cast<ull>(m.rx_drop_oversize.get()), static_cast<ull>(frames_sent));
    // Every frame the device sent arrived whole at the TAP's peer.
    uint64_t got = 0, bytes = 0;
    for (;;) {
      const ssize_t n = ::recv(peer, rx_buf.data(), rx_buf.size(), MSG_DONTWAIT);
      if (n < 0) break;
      FUZZ_CHECK(n >= 1 && n <= 65535, "a TX frame of %zd bytes", n);
      ++got;
      bytes += static_cast<uint64_t>(n);
      last_tx.assign(rx_buf.begin(), rx_buf.begin() + n);
    }
    FUZZ_CHECK(got == m.tx_frames.get() - tx_frames && bytes == m.tx_bytes.get() - tx_bytes,
               "peer got %llu frames / %llu bytes, the device counts %llu / %llu",
               static_cast<ull>(got), static_cast<ull>(bytes),
               static_cast<ull>(m.tx_frames.get() - tx_frames),
               static_cast<ull>(m.tx_bytes.get() - tx_bytes));

    // Where the device may have written: its used rings, its RX queue's writable buffers
    // (as the table was before the run, or is now: the device's own writes may change it).
    const std::array<QueueRegs, 2> regs{queue_regs(0), queue_regs(1)};
    std::vector<Interval> allowed, rings, rx_bufs;
    if (net->active() && !was.stopped) {  // a stopped device may write nothing
      for (const auto& r : regs) {
        if (!r.enabled) continue;
        allowed.push_back({r.used + 2, r.used + 4 + 8ull * r.size});
        rings.push_back({r.desc, r.desc + 16ull * r.size});
        rings.push_back({r.avail, r.avail + v::avail_ring_bytes(r.size)});
        rings.push_back({r.used, r.used + v::used_ring_bytes(r.size)});
      }
      const QueueRegs& rx = regs[v::VirtioNet::kRxQueue];
      for (uint16_t i = 0; rx.enabled && i < rx.size; ++i) {
        const uint64_t at = rx.desc + 16ull * i;
        v::VirtqDesc before{}, now = get<v::VirtqDesc>(at);
        (void)get_before(at, before);
        for (const auto& d : {before, now}) {
          if ((d.flags & v::kDescFWrite) != 0 && d.len != 0 && d.addr + d.len > d.addr) {
            rx_bufs.push_back({d.addr, d.addr + d.len});
          }
        }
      }
    }
    bool rx_onto_rings = false;  // an RX buffer overlaps a ring: the device may rewrite it
    for (const auto& b : rx_bufs) {
      for (const auto& r : rings) rx_onto_rings |= b.overlaps(r);
    }
    allowed.insert(allowed.end(), rx_bufs.begin(), rx_bufs.end());
    for (size_t i = 0; i < std::size(kRam); ++i) {
      auto h = host(kRam[i]);
      for (size_t off = 0; off < h.size(); off += 64) {
        if (std::memcmp(h.data() + off, snap[i].data() + off, 64) == 0) continue;
        for (size_t b = off; b < off + 64; ++b) {
          if (h[b] == snap[i][b]) continue;
          const uint64_t gpa = kRam[i].gpa + b;
          const bool ok = std::any_of(allowed.begin(), allowed.end(), [&](const Interval& iv) {
            return gpa >= iv.lo && gpa < iv.hi;
          });
          FUZZ_CHECK(ok, "the device wrote guest RAM at %#llx (active %d, rx %d/%u@%#llx)",
                     static_cast<ull>(gpa), net->active(), regs[0].enabled, regs[0].size,
                     static_cast<ull>(regs[0].desc));
        }
      }
    }

    // The model of the known layout.
    if (!model) return;
    const bool reactivated = t->metrics().activations.load() != activations;
    if (t->metrics().resets.load() != resets || !net->active() || rx_onto_rings) {
      model.reset();
      return;
    }
    for (uint16_t q = 0; q < 2; ++q) {
      const QueueRegs want{true, model->size, kRing[q].desc, kRing[q].avail, kRing[q].used};
      if (regs[q] != want) {
        model.reset();
        return;
      }
    }
    uint64_t added = 0, need_irq = 0;
    for (uint16_t q = 0; q < 2; ++q) {
      const uint16_t cur = get<uint16_t>(kRing[q].used + 2);
      const auto d = static_cast<uint16_t>(cur - model->used[q]);
      FUZZ_CHECK(d <= model->size, "queue %u: used.idx went from %u to %u (size %u)%s", q,
                 model->used[q], cur, model->size, reactivated ? " at a re-activation" : "");
      for (uint16_t k = 0; k < d; ++k) {
        const auto i = static_cast<uint16_t>(model->used[q] + k);
        check_used(q, get<v::VirtqUsedElem>(kRing[q].used + 4 + 8ull * (i & (model->size - 1))));
      }
      added += d;
      if (d != 0 && (get<uint16_t>(kRing[q].avail) & v::kAvailFNoInterrupt) == 0) ++need_irq;
      model->used[q] = cur;
    }
    FUZZ_CHECK(added == chains_returned(m) - returned,
               "%llu used entries added, the counters say %llu chains were given back",
               static_cast<ull>(added), static_cast<ull>(chains_returned(m) - returned));
    FUZZ_CHECK(m.irqs.get() - irqs >= need_irq,
               "%llu queue(s) had new used entries and interrupts enabled, %llu interrupt(s)",
               static_cast<ull>(need_irq), static_cast<ull>(m.irqs.get() - irqs));
  }

  // DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2): a corrupt ring (avail.idx more than a queue
  // ahead) is counted once and stops the device: the bit reads in device_status, a
  // configuration change is signalled (ISR bit 1), and until the reset (which the
  // harness makes outside a run: the device's epoch changes only between runs) the
  // device does nothing at all — no counter moves, no RAM changes (checked with the
  // byte diff: a stopped device's allowed set is empty).
  void check_needs_reset(const Before& before) {
    const auto& m = net->metrics();
    const uint64_t jumps = m.bad_chains[kJump].get() - before.jumps;
    FUZZ_CHECK(m.needs_reset.get() - before.stops == jumps,
               "%llu corrupt avail.idx counted, the device stopped %llu times",
               static_cast<ull>(jumps), static_cast<ull>(m.needs_reset.get() - before.stops));
    if (before.stopped) {
      FUZZ_CHECK(jumps == 0 && m.bad_chains_total() == before.bad_chains &&
                     chains_returned(m) == before.returned && m.irqs.get() == before.irqs &&
                     m.tx_frames.get() == before.tx_frames &&
                     m.rx_frames.get() + m.rx_drop_too_small.get() + m.rx_drop_oversize.get() ==
                         before.rx_handled,
                 "a device with DEVICE_NEEDS_RESET kept working: %llu chains returned, %llu "
                 "errors counted, %llu irqs",
                 static_cast<ull>(chains_returned(m) - before.returned),
                 static_cast<ull>(m.bad_chains_total() - before.bad_chains),
                 static_cast<ull>(m.irqs.get() - before.irqs));
      FUZZ_CHECK(net->needs_reset(), "DEVICE_NEEDS_RESET went away without a reset");
    }
    if (jumps != 0 && net->active()) {
      FUZZ_CHECK(net->needs_reset(), "a corrupt avail.idx, and the device did not stop");
      FUZZ_CHECK((bar_read(v::common::kDeviceStatus, 1) & v::kStatusNeedsReset) != 0,
                 "a corrupt avail.idx, and device_status has no DEVICE_NEEDS_RESET");
      FUZZ_CHECK((bar_read(v::VirtioPciTransport::kIsrOff, 1) & v::kIsrConfig) != 0,
                 "DEVICE_NEEDS_RESET without a configuration change notification");
    }
  }

  // A used element on the known layout against a reference walk of its chain (the
  // spec's rules and split_queue.h's, on the table as it was before the run).
  void check_used(uint16_t q, const v::VirtqUsedElem& e) {
    FUZZ_CHECK(e.id < model->size, "queue %u: used id %u, size %u", q, e.id, model->size);
    bool ok = true;
    uint64_t readable = 0, writable = 0;
    uint16_t i = static_cast<uint16_t>(e.id);
    for (uint32_t n = 0;; ++n) {
      v::VirtqDesc d{};
      (void)get_before(kRing[q].desc + 16ull * i, d);
      const bool w = (d.flags & v::kDescFWrite) != 0;
      if (n == model->size || (d.flags & v::kDescFIndirect) != 0 || d.len == 0 ||
          !mem->translate(d.addr, d.len) || (!w && writable != 0)) {
        ok = false;
        break;
      }
      (w ? writable : readable) += d.len;
      if ((d.flags & v::kDescFNext) == 0) break;
      if (d.next >= model->size) {
        ok = false;
        break;
      }
      i = d.next;
    }
    if (q == v::VirtioNet::kTxQueue || !ok || readable != 0) {
      FUZZ_CHECK(e.len == 0, "queue %u: used len %u for a chain %s (readable %llu)", q, e.len,
                 ok ? "the device only reads" : "that is malformed", static_cast<ull>(readable));
      return;
    }
    FUZZ_CHECK(e.len == 0 ||
                   (e.len > kHdr && e.len <= kHdr + v::VirtioNet::kMaxFrame && e.len <= writable),
               "RX used len %u, chain %u has %llu writable bytes", e.len, e.id,
               static_cast<ull>(writable));
  }

  std::array<uint8_t, 6> mac{0x02, 0, 0, 0, 0, 0x42};
  std::unique_ptr<GuestMemory> mem;
  std::unique_ptr<GuestRamView> view;
  boost::asio::io_context io;
  std::array<RecordingMsi, 3> msi;
  int peer = -1;
  std::shared_ptr<v::VirtioNet> net;
  std::shared_ptr<v::VirtioPciTransport> t;
  std::vector<std::vector<std::byte>> snap;
  std::optional<Model> model;
  uint64_t frames_sent = 0;
  std::vector<uint8_t> last_tx;  // the last frame the peer received
  std::vector<uint8_t> rx_buf = std::vector<uint8_t>(65536 + 64);
};

// BAR registers a driver writes (offset, width) and values worth trying.
struct Reg {
  uint32_t off;
  uint8_t width;
};
constexpr Reg kRegs[] = {
    {v::common::kDeviceFeatureSelect, 4},
    {v::common::kDriverFeatureSelect, 4},
    {v::common::kDriverFeature, 4},
    {v::common::kMsixConfig, 2},
    {v::common::kDeviceStatus, 1},
    {v::common::kQueueSelect, 2},
    {v::common::kQueueSize, 2},
    {v::common::kQueueMsixVector, 2},
    {v::common::kQueueEnable, 2},
    {v::common::kQueueDesc, 4},
    {v::common::kQueueDesc + 4, 4},
    {v::common::kQueueDesc, 8},
    {v::common::kQueueDriver, 4},
    {v::common::kQueueDriver, 8},
    {v::common::kQueueDevice, 4},
    {v::common::kQueueDevice, 8},
    {v::VirtioPciTransport::kIsrOff, 1},
    {v::VirtioPciTransport::kDeviceOff, 4},
    {v::VirtioPciTransport::kNotifyOff, 2},
    {v::VirtioPciTransport::kNotifyOff + 4, 2},
    {v::VirtioPciTransport::kMsixTableOff, 4},
    {v::VirtioPciTransport::kMsixTableOff + 12, 4},
    {v::VirtioPciTransport::kMsixTableOff + 28, 4},
    {v::VirtioPciTransport::kMsixPbaOff, 8},
};
constexpr uint64_t kValues[] = {0,      1,      2,      3,      7,          0xB,    0xF,
                                0x8F,   0x10,   0x20,   0x80,   0x100,      0x200,  0x1000,
                                0x2000, 0x3000, 0x4000, 0x5000, 0x6000,     0xFFFF, 0x10020,
                                0x30,   0x31,   kHole,  0xFFF0, 0xFEE00000, 0x4001, 0x1FF0};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  Input in(std::span(data, size));
  Harness h;
  using namespace v::common;

  for (int steps = 0; !in.empty() && steps < 256; ++steps) {
    switch (in.get<uint8_t>() % 15) {
      case 0:  // well-formed bring-up on the known layout, queues of 1..256
        h.bring_up(static_cast<uint16_t>(1u << (in.get<uint8_t>() % 9)));
        break;
      case 1: {  // BAR write: a known register and value, or anything at all
        const auto sel = in.get<uint8_t>();
        if ((sel & 1) != 0) {
          const Reg r = kRegs[(sel >> 1) % std::size(kRegs)];
          const auto vsel = in.get<uint8_t>();
          const uint64_t val =
              vsel < 0xC0 ? kValues[vsel % std::size(kValues)] : in.get<uint64_t>();
          h.bar_write(r.off, val, r.width);
        } else {
          const uint64_t off = in.get<uint16_t>() % v::VirtioPciTransport::kBarSize;
          const uint64_t val = in.get<uint64_t>();
          h.bar_write(off, val, 1 + in.get<uint8_t>() % 8);
        }
        h.settle();
        break;
      }
      case 2: {  // BAR read, with what must read back
        const auto sel = in.get<uint8_t>();
        const Reg r = kRegs[(sel >> 1) % std::size(kRegs)];
        const uint64_t off =
            (sel & 1) != 0 ? r.off : in.get<uint16_t>() % v::VirtioPciTransport::kBarSize;
        const size_t width = (sel & 1) != 0 ? r.width : 1 + in.get<uint8_t>() % 8;
        const uint64_t val = h.bar_read(off, width);
        if (off == kNumQueues && width == 2)
          FUZZ_CHECK(val == 2, "num_queues %llu", static_cast<ull>(val));
        if (off == kConfigGeneration && width == 1) FUZZ_CHECK(val == 0, "config_generation");
        if (off == v::VirtioPciTransport::kDeviceOff && width >= 6) {
          FUZZ_CHECK(std::memcmp(&val, h.mac.data(), 6) == 0, "MAC reads %#llx",
                     static_cast<ull>(val));
        }
        if (off == kQueueSize && width == 2) FUZZ_CHECK(val <= 0xFFFF, "queue size");
        h.settle();
        break;
      }
      case 3: {  // PCI config write (dword-aligned, byte lanes as the PCI bus gives them)
        const auto off = static_cast<uint8_t>(in.get<uint8_t>() & 0xFC);
        const auto lanes = in.get<uint8_t>();
        uint32_t mask = 0;
        for (int b = 0; b < 4; ++b) mask |= (lanes >> b & 1) != 0 ? 0xFFu << (8 * b) : 0;
        h.t->write_config(off, in.get<uint32_t>(), mask == 0 ? 0xFFFFFFFFu : mask);
        h.settle();
        break;
      }
      case 4: {  // PCI config read
        const auto off = static_cast<uint8_t>(in.get<uint8_t>() & 0xFC);
        const uint32_t val = h.t->read_config(off);
        if (off == 0) FUZZ_CHECK(val == 0x10411AF4u, "vendor/device %#x", val);
        break;
      }
      case 5: {  // a descriptor anywhere in a known table
        const uint16_t q = in.get<uint8_t>() & 1;
        const auto i = in.get<uint8_t>();
        const auto asel = in.get<uint8_t>();
        const auto aoff = in.get<uint16_t>();
        uint64_t addr = 0;
        switch (asel % 8) {
          case 0:
            addr = kBuf + aoff % 0x8000;
            break;
          case 1:
            addr = kRam[1].gpa + aoff;
            break;
          case 2:
            addr = kHole + aoff;
            break;  // the hole
          case 3:
            addr = kRam[0].size - (aoff & 0xFFF);
            break;  // straddles the end
          case 4:
            addr = 0xFFFFFFFFFFFFF000ull + (aoff & 0xFFF);
            break;  // wraps
          case 5:
            addr = kRing[aoff & 1].desc + (aoff & 0xFF0);
            break;  // onto a table
          case 6:
            addr = kRing[aoff & 1].used + (aoff & 0x7);
            break;  // onto a used ring
          default:
            addr = in.get<uint64_t>();
            break;
        }
        uint32_t len = in.get<uint32_t>();
        if ((asel & 0x80) == 0) len %= 0x2000;
        const auto flags = static_cast<uint16_t>(in.get<uint8_t>() & 0x7);
        h.desc(q, i, addr, len, flags, in.get<uint16_t>() % 512);
        break;
      }
      case 6: {  // an avail entry (any head) and maybe a kick
        const uint16_t q = in.get<uint8_t>() & 1;
        const auto head = in.get<uint16_t>();
        h.offer(q,
                (head & 0x8000) != 0 ? head : static_cast<uint16_t>(head & (h.layout_size() - 1)));
        if ((head & 0x4000) != 0) {
          h.kick(q);
          h.settle();
        }
        break;
      }
      case 7: {  // avail.idx set to anything (jumps, rewinds)
        const uint16_t q = in.get<uint8_t>() & 1;
        h.put<uint16_t>(kRing[q].avail + 2, in.get<uint16_t>());
        break;
      }
      case 8: {  // avail.flags (interrupt suppression)
        const uint16_t q = in.get<uint8_t>() & 1;
        h.put<uint16_t>(kRing[q].avail, in.get<uint8_t>() & 1);
        break;
      }
      case 9: {  // a raw store anywhere in RAM
        const uint32_t at = in.get<uint32_t>() % 0x20000;
        const uint64_t gpa = at < 0x10000 ? at : kRam[1].gpa + (at - 0x10000);
        const uint64_t val = in.get<uint64_t>();
        const size_t n = std::min<uint64_t>(1 + in.get<uint8_t>() % 8,
                                            kRam[gpa >= kRam[1].gpa].gpa + 0x10000 - gpa);
        auto b = h.mem->translate(gpa, n).value();
        std::memcpy(b.data(), &val, n);
        h.note_store(gpa, n);
        break;
      }
      case 10: {  // frames from the backend
        const auto n = 1 + in.get<uint8_t>() % 8;
        const auto sel = in.get<uint16_t>();
        size_t len = sel % 1600;
        if (sel >= 0xFFF0)
          len = (sel & 1) != 0 ? 65600 : 0;
        else if (sel >= 0xFF00)
          len = v::VirtioNet::kMaxFrame + (sel & 1);
        h.send_frames(n, len, kFramePattern);
        h.settle();
        break;
      }
      case 11: {  // a kick by any width, of any queue index
        const auto sel = in.get<uint8_t>();
        h.kick(sel % 3, 1 + (sel >> 2) % 4);
        h.settle();
        break;
      }
      case 12: {  // a well-formed TX chain (header + data) and its kick
        const uint16_t head = h.chain(v::VirtioNet::kTxQueue, in, false);
        h.offer(v::VirtioNet::kTxQueue, head);
        h.kick(v::VirtioNet::kTxQueue);
        h.settle();
        break;
      }
      case 13: {  // a well-formed RX chain and its kick
        const uint16_t head = h.chain(v::VirtioNet::kRxQueue, in, true);
        h.offer(v::VirtioNet::kRxQueue, head);
        h.kick(v::VirtioNet::kRxQueue);
        h.settle();
        break;
      }
      case 14:  // device status: anything (clear DRIVER_OK, FAILED, reset, ...)
        h.status(in.get<uint8_t>());
        h.settle();
        break;
      default:
        break;
    }
  }

  // The same device still works: reset, bring up, one TX frame, one marker frame in.
  h.bring_up(16);
  std::vector<uint8_t> tx(300, 0xC3);
  h.put(kBuf, v::VirtioNetHdr{});
  auto b = h.mem->translate(kBuf + kHdr, tx.size()).value();
  std::memcpy(b.data(), tx.data(), tx.size());
  h.desc(v::VirtioNet::kTxQueue, 3, kBuf, static_cast<uint32_t>(kHdr + tx.size()), 0, 0);
  h.offer(v::VirtioNet::kTxQueue, 3);
  h.kick(v::VirtioNet::kTxQueue);
  h.last_tx.clear();
  h.settle();
  FUZZ_CHECK(h.last_tx == tx, "a well-formed TX frame after the input: %zu bytes arrived",
             h.last_tx.size());
  const uint64_t marker_len = 200;
  const uint64_t sent_before = h.frames_sent;
  bool marker = false;
  for (uint64_t n = 0; !marker && n < sent_before + 4; ++n) {
    if (h.frames_sent == sent_before) h.send_frames(1, marker_len, 0xA7);  // room for it now?
    const auto idx = h.get<uint16_t>(kRing[0].used + 2);
    const auto head = static_cast<uint16_t>(n & 15);
    h.desc(v::VirtioNet::kRxQueue, head, kBuf + 0x1000, 1526, v::kDescFWrite, 0);
    h.offer(v::VirtioNet::kRxQueue, head);
    h.kick(v::VirtioNet::kRxQueue);
    h.settle();
    if (h.get<uint16_t>(kRing[0].used + 2) == idx) continue;
    const auto e = h.get<v::VirtqUsedElem>(kRing[0].used + 4 + 8ull * (idx & 15));
    FUZZ_CHECK(e.id == head, "RX used id %u, posted %u", e.id, head);
    auto got = h.mem->translate(kBuf + 0x1000 + kHdr, marker_len).value();
    marker = e.len == kHdr + marker_len &&
             std::all_of(got.begin(), got.end(), [](std::byte x) { return x == std::byte{0xA7}; });
  }
  FUZZ_CHECK(marker, "the marker frame never arrived (%llu frames sent)",
             static_cast<ull>(h.frames_sent));
  return 0;
}
