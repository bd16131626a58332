// devices/lnic/lnic.h — the Labyrinth NIC: device-owned receive buffers.
//
// The register file and rings are guest/abi/lnic.h. This class is the device model:
//
//   auto nic = std::make_shared<Lnic>(cfg, io, pool, rx_cache, ram, msix_lines,
//   std::move(backend)); auto fn = std::make_shared<LnicPci>(nic, bar_gpa);  // lnic_pci.h: config
//   space, BAR0 pci.insert(slot, fn);  mmio.insert(fn, bar_gpa, LNIC_BAR_SIZE);
//   // vmm/ wires the RET/TX doorbells (ioeventfd) to on_return_doorbell()/on_tx_doorbell()
//   nic->start();                                        // backend frames now arrive
//
// RX — the interrupt path, on the device event loop (receive()): check the RX ring
// has room, take a page with alloc_page(kGfpAtomicExclusive) — no syscall, lock or
// fault, immediate failure → drop and count —, copy the frame in, transfer the page
// to the guest's owner id, write the completion, publish prod (release), signal the
// RX vector (once per batch, unless the guest set LNIC_RING_F_NO_IRQ). The MSI-X table
// (msix()) belongs to the device so that the event loop can fire it; LnicPci places it
// in BAR0 and config space.
// RETURN — doorbell or when the pool runs dry: every returned address is looked up
// in the pool and transferred guest → device; anything else is a counted violation;
// then the page is freed. A driver that acknowledged LNIC_F_RET_EVENT rings less: the
// device then also takes up to LNIC_RET_PASS_MAX returns after each RX batch (flush(),
// outside the alloc and host_rx spans) and tells the driver in ret_event when it wants
// the next doorbell (guest/abi/lnic.h; docs/lnic.md, "RETURN doorbell suppression").
// TX — doorbell: descriptors are validated and copied out to the backend, then the TX
// vector fires (unless the TX ring has LNIC_RING_F_NO_IRQ). RESET and RX_STOP
// (guest/abi/lnic.h) are taken on the vCPU thread and carried out on the event loop;
// STATUS says STOPPING / lacks RX_STOPPED until they are, so a driver that polls STATUS
// knows when the device has stopped writing its rings.
//
// Threads: registers on vCPU threads (mu_ guards the register file); everything else
// on the event loop. ENABLE validates on the vCPU thread and posts the ring set to
// the event loop. Lock order: Bus::devices_mu_ -> Lnic::mu_ (nothing taken under it).
#pragma once

#include <array>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "allocator/page_pool.h"
#include "devices/bus/bus.h"
#include "devices/guest_ram.h"
#include "devices/lnic/backend/backend.h"
#include "devices/lnic/hostile.h"
#include "devices/lnic/lnic_metrics.h"
#include "devices/lnic/pacer.h"
#include "devices/msi_line.h"
#include "devices/pci/msix.h"
#include "guest/abi/lnic.h"

namespace labyrinth::devices::lnic {

// The guest's driver checks RX pages against the ABI's page size; the pool hands out
// its own. They are one number.
static_assert(alloc::kPageSize == LNIC_PAGE_SIZE);

struct LnicConfig {
  std::string id = "lnic0";
  std::array<uint8_t, 6> mac{0x02, 0x4C, 0x42, 0x00, 0x00, 0x00};
  uint64_t mmio_base = 0;
  alloc::OwnerId device_owner = 0;  // the device's owner id in the pool
  alloc::OwnerId guest_owner = 0;   // the guest driver's owner id (pages it holds via this NIC)
  int64_t tsc_offset = 0;           // guest TSC = host TSC + tsc_offset
  // Test only: busy-wait this long on the RX path (after the copy, before posting), so
  // the measurement can be validated against a delay of known size.
  uint64_t test_inject_delay_ns = 0;
  // Test only: one hostile kind per activation (ENABLE), in order; later activations
  // are correct. Written once the guest has consumed every completion and given back
  // every page (so the driver sees the hostile entries in one poll and no page of the
  // device's is stranded), on the next frame received.
  std::vector<HostileKind> test_hostile;
};

class Lnic final : public BusDevice, public FrameSink, public std::enable_shared_from_this<Lnic> {
 public:
  Lnic(LnicConfig cfg, boost::asio::io_context& io, alloc::PagePool& pool, alloc::PageCache* cache,
       const GuestRam& ram, std::span<MsiLine* const> lines, std::unique_ptr<Backend> backend);
  ~Lnic() override;

  // Registers (vCPU threads).
  std::string_view label() const override { return label_; }
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Event loop.
  void start();  // starts the backend (pktgen: once the guest has enabled the NIC)
  void stop();   // stops the backend and the floor generator
  // PATCH /vm: while paused no frame is taken from the backend (it is stopped: pktgen
  // generates nothing, udp/tap frames wait in the socket's queue) and the doorbells are
  // noted, not acted on; nothing of this NIC writes guest memory or raises an interrupt.
  // Frames posted before the pause get their interrupt first. resume() restarts the
  // backend (pktgen's schedule begins again: the pause is no lateness) and takes up the
  // doorbells rung meanwhile.
  void pause();
  void resume();
  void receive(std::span<const std::byte> frame, uint64_t t_ready) override;
  void flush() override;
  void on_return_doorbell();
  void on_tx_doorbell();
  // Latency floor: at `rate_hz`, signal the interrupt with no device work in the path
  // and record (guest handler entry - scheduled send time).
  void start_floor(double rate_hz, uint32_t spin_us);
  void stop_floor();
  // Latency warm-up: one floor-style signal (no device work) that the guest answers once
  // it takes interrupts; neither measured nor counted. send_probe() is false while the
  // rings are not active yet; probe_answered() clears the probe once the guest answered.
  bool send_probe();
  bool probe_answered();

  const LnicConfig& config() const { return cfg_; }
  // The guest TSC's offset from the host's, known once the vCPUs exist. Setup only:
  // before the event loop and the vCPU threads run.
  void set_tsc_offset(int64_t offset) { cfg_.tsc_offset = offset; }
  const LnicMetrics& metrics() const { return metrics_; }
  const LnicLatency& latency() const { return latency_; }
  // What latency().alloc's samples are net of: the median cost of an empty rdtsc pair,
  // in ticks, measured once at construction. Samples at or below it are recorded as 0
  // (metrics().alloc_net_zero counts them).
  uint64_t alloc_timer_ticks() const { return timer_ticks_; }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  bool running() const;  // RUNNING as the guest last saw it (any thread)
  // Pages this NIC has given the guest and not got back (any thread).
  uint64_t pages_with_guest() const { return pages_out_.load(std::memory_order_relaxed); }
  // The MSI-X table: vector LNIC_VEC_RX and LNIC_VEC_TX (LnicPci decodes its accesses).
  MsixTable& msix() { return msix_; }
  const MsixTable& msix() const { return msix_; }
  // The counters LnicPci keeps for accesses outside the register file.
  LnicMetrics& mutable_metrics() { return metrics_; }

 private:
  // A ring the guest configured, translated once at ENABLE (RAM never moves).
  struct Ring {
    std::span<std::byte> mem;  // header + entries
    uint32_t size = 0;         // entries, power of two
    lnic_ring_header* header() const { return reinterpret_cast<lnic_ring_header*>(mem.data()); }
    std::byte* entry(uint32_t index, size_t entry_size) const {
      return mem.data() + sizeof(lnic_ring_header) + size_t{index & (size - 1)} * entry_size;
    }
  };
  struct RingSet {
    Ring rx, ret, tx;
  };
  struct RegFile {  // guarded by mu_
    uint64_t ring_gpa[3] = {};
    uint32_t ring_size[3] = {};
    uint32_t status = 0;
    uint32_t config_error = 0;
    uint32_t driver_features = 0;  // LNIC_REG_DRIVER_FEATURES: checked at ENABLE
  };

  // Register side (lnic_registers.cc).
  uint32_t read_reg(uint32_t offset);
  void write_reg(uint32_t offset, uint32_t value);
  // A valid future only in the test-only hostile mode whose activation writes an
  // impossible RX prod: the caller waits for it after releasing mu_ (write_reg).
  std::future<void> enable_locked();
  void reset_locked();
  void rx_stop_locked();
  void set_status(uint32_t status);  // needs mu_: regs_.status and its lock-free mirror

  // Data path (lnic_datapath.cc), event loop only.
  void activate(const RingSet& rings, uint32_t driver_features);
  void deactivate();  // RESET's second half: rings gone, then STOPPING cleared
  void stop_rx();     // RX_STOP's second half: no more completions, then RX_STOPPED
  // Takes at most `max` RETURN entries (all of them by default); with LNIC_F_RET_EVENT
  // then tells the guest when to ring next (arm_ret_event).
  // `rung`: a doorbell asked for this pass (else its pages count as taken unrung).
  void process_returns(uint32_t max = LNIC_RING_MAX, bool rung = false);
  void arm_ret_event(const Ring& ret, uint32_t prod_seen);
  void handle_return(const lnic_return& r);
  void process_tx();
  uint32_t post_hostile(const Ring& rx, const lnic_rx_completion& real);
  void post_hostile_prod(const Ring& rx);
  void floor_send(uint64_t t_sched);
  void floor_collect();

  LnicConfig cfg_;
  std::string label_;
  boost::asio::io_context& io_;
  alloc::PagePool& pool_;
  alloc::PageCache* cache_;  // the event loop's per-context cache
  const GuestRam& ram_;
  MsixTable msix_;
  std::unique_ptr<Backend> backend_;

  std::mutex mu_;  // guards regs_
  RegFile regs_;
  std::atomic<uint32_t> status_{0};  // mirror of regs_.status for lock-free reads

  // Event-loop state.
  std::optional<RingSet> rings_;
  uint32_t rx_prod_ = 0, ret_cons_ = 0, tx_cons_ = 0;
  uint64_t seq_ = 0;
  bool rx_stopped_ = false;             // RX_STOP carried out (until the next ENABLE)
  std::atomic<uint64_t> pages_out_{0};  // written by the event loop, read by vCPUs
  // What this NIC has handed the guest, by pool page index: the exact handle (pool
  // generation) and the completion seq that delivered it. A RETURN entry is acted on
  // only if it names that delivery; the pool's generation check backs it up.
  struct Delivery {
    alloc::Page page;
    uint64_t seq = 0;
    uint64_t t_ready = 0;            // when its frame was ready
    uint64_t last_returned_seq = 0;  // + 1; 0: never returned (classifies violations)
    bool out = false;                // with the guest now
  };
  std::vector<Delivery> out_;
  static constexpr size_t kMaxPending = 256;
  std::array<uint64_t, kMaxPending> pending_ready_{};  // t_ready of frames posted, not signalled
  size_t pending_ = 0;
  bool in_returns_ = false;
  // LNIC_F_RET_EVENT, as the driver acknowledged it at this activation's ENABLE.
  bool ret_event_ = false;
  // An RX allocation failed and none has succeeded at the first try since: the device
  // wants every page back now (ret_event = the prod it saw: the next return rings).
  bool starved_ = false;
  uint32_t ret_event_last_ = 0;  // the ret_event last stored (the device never reads it back)
  bool start_requested_ = false;
  bool backend_started_ = false;
  bool paused_ = false;
  bool ret_rung_ = false, tx_rung_ = false;  // doorbells rung while paused
  std::unique_ptr<Pacer> floor_pacer_;
  std::vector<std::unique_ptr<Pacer>> retired_pacers_;  // may have posted steps pending
  uint64_t inject_ticks_ = 0;
  size_t activations_ = 0;         // ENABLEs carried out (test_hostile's index)
  size_t activations_posted_ = 0;  // guarded by mu_: ENABLEs accepted (vCPU side)
  bool hostile_armed_ = false;     // this activation still has its hostile kind to write
  bool hostile_hold_ = false;      // rx_prod_beyond_ring written: drop until the next reset
  uint64_t timer_ticks_ = 0;       // median cost of an empty rdtsc pair, taken off alloc samples

  LnicMetrics metrics_;
  LnicLatency latency_;
};

}  // namespace labyrinth::devices::lnic
