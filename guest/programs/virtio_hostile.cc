// virtio_hostile: a misbehaving virtio-net driver. Drives labyrinth's virtio PCI
// function (devices/virtio/) directly — port 0xCF8/0xCFC config cycles, BAR0 MMIO — and
// writes everything a driver must not: bad queue setups, out-of-range heads and next
// indices, descriptor loops, zero and huge lengths, buffers outside RAM or in the MMIO
// gap, indirect descriptors, an avail index far ahead, garbage register accesses, a
// doorbell flood. After each the device must still work: a well-formed TX chain
// sent afterwards comes back on the used ring. No interrupts (every MSI-X vector is
// NO_VECTOR): the guest polls the used ring and device_status.
//
// No fixed delays: the device works in its own thread, some time after the guest wrote
// (how long depends on the host: a sanitizer-built VMM in the TCG test VM is slow), so
// every window ends on something the device does that the guest can see — a used entry,
// or DEVICE_NEEDS_RESET for the avail index far ahead (the device stops on a corrupt
// ring until the driver resets it) — bounded by kWaitMs, a failed check if it never
// comes.
//
// Last line: virtio_hostile: checks=C failed=F. Exit 0 when nothing failed.
// The host test (tests/devices/virtio/virtio_vm_test.cc) checks the device's counters
// (labyrinth run --metrics) against what this guest did, and reads the well-formed frames
// (virtio_hostile_frame.h) off the TAP.
#include "guest/programs/virtio_hostile_frame.h"
#include "guest/runtime/runtime.h"
#include "guest/runtime/tsc.h"

namespace {

constexpr const char* kWho = "virtio_hostile";
constexpr uint16_t kQ = 16;  // queue size

// Common config offsets (struct virtio_pci_common_cfg).
constexpr uint32_t kDevFeatSel = 0x00, kDrvFeatSel = 0x08, kDrvFeat = 0x0C, kStatus = 0x14,
                   kQSelect = 0x16, kQSize = 0x18, kQVector = 0x1A, kQEnable = 0x1C, kQDesc = 0x20,
                   kQDriver = 0x28, kQDevice = 0x30, kNotify = 0x3000;
constexpr uint8_t kAck = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64;
constexpr uint64_t kWaitMs = 10000;  // for anything the device must do
constexpr uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct Ring {  // one split queue's memory
  alignas(4096) Desc desc[kQ];
  alignas(4096) volatile uint16_t avail[3 + kQ];         // flags, idx, ring[], used_event
  alignas(4096) volatile uint32_t used[1 + 2 * kQ + 1];  // flags|idx, {id, len}[], avail_event
};
constinit Ring g_rx, g_tx;
alignas(4096) uint8_t g_frame[4096];

uint64_t g_bar = 0;
uint32_t g_checks = 0, g_failed = 0;

uint32_t pci_read(uint32_t slot, uint32_t off) {
  guest::outl(0xCF8, 0x80000000u | slot << 11 | off);
  return guest::inl(0xCFC);
}
void pci_write(uint32_t slot, uint32_t off, uint32_t v) {
  guest::outl(0xCF8, 0x80000000u | slot << 11 | off);
  guest::outl(0xCFC, v);
}
template <class T>
T rd(uint64_t off) {
  return *reinterpret_cast<volatile T*>(g_bar + off);
}
template <class T>
void wr(uint64_t off, T v) {
  *reinterpret_cast<volatile T*>(g_bar + off) = v;
}

void check(bool ok, const char* what) {
  ++g_checks;
  if (!ok) {
    ++g_failed;
    guest::printf("%s: FAILED: %s\n", kWho, what);
  }
}

uint64_t gpa(const volatile void* p) {
  return reinterpret_cast<uint64_t>(p);
}

// Programs queue q; returns queue_enable as read back.
bool setup_queue(uint16_t q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used) {
  wr<uint16_t>(kQSelect, q);
  wr<uint16_t>(kQSize, size);
  wr<uint32_t>(kQDesc, static_cast<uint32_t>(desc));
  wr<uint32_t>(kQDesc + 4, static_cast<uint32_t>(desc >> 32));
  wr<uint32_t>(kQDriver, static_cast<uint32_t>(avail));
  wr<uint32_t>(kQDriver + 4, static_cast<uint32_t>(avail >> 32));
  wr<uint32_t>(kQDevice, static_cast<uint32_t>(used));
  wr<uint32_t>(kQDevice + 4, static_cast<uint32_t>(used >> 32));
  wr<uint16_t>(kQVector, 0xFFFF);
  wr<uint16_t>(kQEnable, 1);
  return rd<uint16_t>(kQEnable) == 1;
}

// Writes the driver features: lo bits 0-31, hi bits 32-63 (hi bit 0: VIRTIO_F_VERSION_1).
void driver_features(uint32_t lo, uint32_t hi) {
  wr<uint32_t>(kDrvFeatSel, 0);
  wr<uint32_t>(kDrvFeat, lo);
  wr<uint32_t>(kDrvFeatSel, 1);
  wr<uint32_t>(kDrvFeat, hi);
}

// Polls device_status (each read is an exit) until (status & mask) == want, up to kWaitMs.
bool wait_status(uint8_t mask, uint8_t want) {
  const uint64_t deadline = guest::tsc_deadline_ms(kWaitMs);
  while ((rd<uint8_t>(kStatus) & mask) != want) {
    if (guest::tsc_passed(deadline)) return false;
    guest::udelay(100);
  }
  return true;
}

uint16_t used_idx() {
  return static_cast<uint16_t>(g_tx.used[0] >> 16);
}

// Makes head available on TX and kicks.
void offer(uint16_t head) {
  const uint16_t idx = g_tx.avail[1];
  g_tx.avail[2 + idx % kQ] = head;
  asm volatile("" ::: "memory");
  g_tx.avail[1] = static_cast<uint16_t>(idx + 1);
  wr<uint16_t>(kNotify + 4, 1);
}

// offer(head), then waits (up to kWaitMs) for used.idx to reach want.
bool offer_and_wait(uint16_t head, uint16_t want) {
  offer(head);
  const uint64_t deadline = guest::tsc_deadline_ms(kWaitMs);
  while (used_idx() != want && !guest::tsc_passed(deadline)) guest::pause();
  return used_idx() == want;
}

// A well-formed frame: header + virtio_hostile::kTxFrame, one descriptor. The device must
// return it (and send it: the host test counts the copies that reach the TAP).
void expect_working(const char* after) {
  g_tx.desc[9] = Desc{gpa(g_frame), 12 + virtio_hostile::kTxFrameLen, 0, 0};
  const uint16_t want = static_cast<uint16_t>(used_idx() + 1);
  const bool ok = offer_and_wait(9, want) && g_tx.used[1 + 2 * ((want - 1) % kQ)] == 9;
  check(ok, after);
}

// Zeroes a queue's avail and used rings, as a driver does before it sets a queue up.
void clear_rings(Ring& r) {
  for (auto& a : r.avail) a = 0;
  for (auto& u : r.used) u = 0;
}

// The reset and the driver's start-up by the book (virtio 1.2, 3.1.1): status 0, wait
// for it to read 0, ACKNOWLEDGE | DRIVER, VERSION_1, FEATURES_OK, both queues on clean
// rings, DRIVER_OK.
void restart(const char* why) {
  wr<uint8_t>(kStatus, 0);
  check(wait_status(0xFF, 0), "device_status did not read 0 after the reset");
  wr<uint8_t>(kStatus, kAck | kDriver);
  driver_features(0, 1);
  wr<uint8_t>(kStatus, kAck | kDriver | kFeaturesOk);
  check((rd<uint8_t>(kStatus) & kFeaturesOk) != 0, "FEATURES_OK refused after the reset");
  clear_rings(g_rx);
  clear_rings(g_tx);
  check(setup_queue(0, kQ, gpa(g_rx.desc), gpa(g_rx.avail), gpa(g_rx.used)), "RX queue again");
  check(setup_queue(1, kQ, gpa(g_tx.desc), gpa(g_tx.avail), gpa(g_tx.used)), "TX queue again");
  wr<uint8_t>(kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  check((rd<uint8_t>(kStatus) & kNeedsReset) == 0, "DEVICE_NEEDS_RESET survived the reset");
  expect_working(why);
}

}  // namespace

int guest_main(unsigned cpu, const labyrinth_boot_info& info) {
  if (cpu != 0) guest::halt_forever();
  uint32_t slot = 0;
  for (uint32_t s = 1; s < 32 && slot == 0; ++s) {
    if (pci_read(s, 0) == 0x10411AF4u) slot = s;
  }
  if (slot == 0) {
    guest::printf("%s: no virtio-net function on PCI bus 0\n", kWho);
    return guest::kExitFail;
  }
  g_bar = pci_read(slot, 0x10) & ~uint64_t{0xF};
  pci_write(slot, 0x04, 0x6);  // memory space, bus master
  guest::printf("%s: virtio-net in slot %u, BAR0 0x%lx\n", kWho, slot, g_bar);
  // The header stays zero (no offloads); the Ethernet frame follows it.
  for (uint32_t i = 0; i < virtio_hostile::kTxFrameLen; ++i) {
    g_frame[12 + i] = virtio_hostile::kTxFrame[i];
  }

  // Garbage register accesses (counted by the transport): unmapped offsets, wrong widths.
  wr<uint64_t>(0x7FF8, ~uint64_t{0});
  (void)rd<uint32_t>(0x6000);
  wr<uint8_t>(0x04, 1);  // device_feature: read-only, wrong width
  wr<uint16_t>(kQSelect, 999);
  wr<uint16_t>(kQSize, 16);  // no such queue: ignored

  wr<uint8_t>(kStatus, 0);
  wr<uint8_t>(kStatus, kAck | kDriver);
  // A feature not offered (VIRTIO_NET_F_CSUM): FEATURES_OK must not stick.
  driver_features(1, 1);
  wr<uint8_t>(kStatus, kAck | kDriver | kFeaturesOk);
  check((rd<uint8_t>(kStatus) & kFeaturesOk) == 0, "an unoffered feature was accepted");
  wr<uint8_t>(kStatus, 0);
  wr<uint8_t>(kStatus, kAck | kDriver);
  wr<uint32_t>(kDevFeatSel, 1);
  driver_features(0, 1);  // VIRTIO_F_VERSION_1 only
  wr<uint8_t>(kStatus, kAck | kDriver | kFeaturesOk);
  check((rd<uint8_t>(kStatus) & kFeaturesOk) != 0, "FEATURES_OK refused for VERSION_1");

  // Bad queue setups: each must leave the queue disabled (6 rejects).
  const uint64_t ram_end = info.ram_bytes;  // below 3 GiB for this guest's config
  check(!setup_queue(1, 3, gpa(g_tx.desc), gpa(g_tx.avail), gpa(g_tx.used)), "size 3");
  check(!setup_queue(1, 1024, gpa(g_tx.desc), gpa(g_tx.avail), gpa(g_tx.used)), "size 1024");
  check(!setup_queue(1, kQ, 0xFEE00000, gpa(g_tx.avail), gpa(g_tx.used)), "desc in the gap");
  check(!setup_queue(1, kQ, gpa(g_tx.desc), gpa(g_tx.avail), ram_end - 8), "used at RAM end");
  check(!setup_queue(1, kQ, gpa(g_tx.desc) + 8, gpa(g_tx.avail), gpa(g_tx.used)), "misaligned");
  check(!setup_queue(1, kQ, 1ull << 40, gpa(g_tx.avail), gpa(g_tx.used)), "desc at 1 TiB");
  check(setup_queue(0, kQ, gpa(g_rx.desc), gpa(g_rx.avail), gpa(g_rx.used)), "RX queue");
  check(setup_queue(1, kQ, gpa(g_tx.desc), gpa(g_tx.avail), gpa(g_tx.used)), "TX queue");
  wr<uint8_t>(kStatus, kAck | kDriver | kFeaturesOk | kDriverOk);
  expect_working("first well-formed frame");

  // Malformed chains, each followed by a well-formed frame.
  // An out-of-range head has no chain to give back: it is consumed without a used entry.
  // The device takes avail entries in order, so once the frame offered after it is back,
  // used.idx has moved by exactly one if the head did not reach the used ring.
  uint16_t u = used_idx();
  offer(kQ + 3);
  expect_working("after an out-of-range head");
  check(used_idx() == static_cast<uint16_t>(u + 1), "an out-of-range head reached the used ring");
  g_tx.desc[0] = Desc{gpa(g_frame), 100, kNext, 0};  // loop onto itself
  u = used_idx();
  check(offer_and_wait(0, static_cast<uint16_t>(u + 1)), "loop not given back");
  expect_working("after a descriptor loop");
  g_tx.desc[1] = Desc{gpa(g_frame), 64, kNext, 2};  // a longer cycle 1 -> 2 -> 3 -> 1
  g_tx.desc[2] = Desc{gpa(g_frame), 64, kNext, 3};
  g_tx.desc[3] = Desc{gpa(g_frame), 64, kNext, 1};
  u = used_idx();
  check(offer_and_wait(1, static_cast<uint16_t>(u + 1)), "cycle not given back");
  expect_working("after a descriptor cycle");
  const Desc bad[] = {
      {gpa(g_frame), 0, 0, 0},                // zero length
      {gpa(g_frame), 0xFFFFFFFFu, 0, 0},      // huge length
      {0xFEE00000, 64, 0, 0},                 // the LAPIC page (MMIO gap)
      {1ull << 48, 64, 0, 0},                 // far outside RAM
      {~uint64_t{0} - 32, 64, 0, 0},          // wraps around 2^64
      {ram_end - 16, 64, 0, 0},               // straddles the end of RAM
      {gpa(g_frame), 64, kNext, 999},         // next index out of range
      {gpa(g_frame), 64, kIndirect, 0},       // indirect (not negotiated)
      {gpa(g_frame), 64, kWrite | kNext, 5},  // writable, then readable (desc 5)
  };
  g_tx.desc[5] = Desc{gpa(g_frame), 64, 0, 0};
  for (const Desc& d : bad) {
    g_tx.desc[4] = d;
    u = used_idx();
    check(offer_and_wait(4, static_cast<uint16_t>(u + 1)), "malformed chain not given back");
    expect_working("after a malformed chain");
  }
  // A TX chain shorter than the virtio-net header: dropped, given back.
  g_tx.desc[6] = Desc{gpa(g_frame), 8, 0, 0};
  u = used_idx();
  check(offer_and_wait(6, static_cast<uint16_t>(u + 1)), "short frame not given back");
  expect_working("after a frame shorter than its header");
  // avail.idx far ahead: the ring is corrupt, nothing to skip to. The device counts it
  // once, stops, and sets DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2) — the guest waits for
  // that bit rather than for a while; the reset and a fresh start make it work again.
  g_tx.avail[1] = static_cast<uint16_t>(g_tx.avail[1] + 1000);
  wr<uint16_t>(kNotify + 4, 1);
  check(wait_status(kNeedsReset, kNeedsReset), "avail.idx far ahead: no DEVICE_NEEDS_RESET");
  restart("after avail.idx ran ahead and the reset");
  // Doorbell flood, RX and TX, and kicks of queues that do not exist.
  for (int i = 0; i < 2000; ++i) {
    wr<uint16_t>(kNotify + 4 * (i % 2), static_cast<uint16_t>(i % 2));
  }
  wr<uint16_t>(kNotify + 4 * 7, 7);
  expect_working("after a doorbell flood");

  guest::printf("%s: checks=%u failed=%u\n", kWho, g_checks, g_failed);
  return g_failed == 0 ? guest::kExitPass : guest::kExitFail;
}
