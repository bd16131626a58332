// The lnic register file (vCPU threads): reads, writes, ENABLE validation, RESET, RX_STOP.
#include <chrono>
#include <cstring>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "allocator/measure/tsc.h"
#include "devices/lnic/lnic.h"

namespace labyrinth::devices::lnic {

namespace {
constexpr size_t kEntrySize[3] = {sizeof(lnic_rx_completion), sizeof(lnic_return),
                                  sizeof(lnic_tx_desc)};
constexpr uint32_t kRingLo[3] = {LNIC_REG_RX_RING_LO, LNIC_REG_RET_RING_LO, LNIC_REG_TX_RING_LO};
constexpr uint32_t kRingSize[3] = {LNIC_REG_RX_RING_SIZE, LNIC_REG_RET_RING_SIZE,
                                   LNIC_REG_TX_RING_SIZE};
// What FEATURES offers; LNIC_REG_DRIVER_FEATURES may name only these.
constexpr uint32_t kFeatures =
    LNIC_F_TIMESTAMPS | LNIC_F_VIOLATIONS | LNIC_F_DRAIN | LNIC_F_TX_IRQ | LNIC_F_RET_EVENT;
bool is_pow2(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}
}  // namespace

// Every register is a dword: other widths and unaligned offsets are counted and read
// as all-ones, so a guest cannot see half of a 64-bit value change under it.
void Lnic::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.size() != 4 || offset % 4 != 0) {
    metrics_.mmio_bad_access.inc_shared();
    std::memset(data.data(), 0xFF, data.size());
    return;
  }
  const uint32_t v = read_reg(static_cast<uint32_t>(offset));
  std::memcpy(data.data(), &v, 4);
}

void Lnic::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.size() != 4 || offset % 4 != 0) {
    metrics_.mmio_bad_access.inc_shared();
    return;
  }
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  write_reg(static_cast<uint32_t>(offset), v);
}

// Lock-free for the event loop: status_ mirrors regs_.status (release stores under mu_).
bool Lnic::running() const {
  return (status_.load(std::memory_order_acquire) & LNIC_STATUS_RUNNING) != 0;
}

uint32_t Lnic::read_reg(uint32_t offset) {
  std::lock_guard lock(mu_);
  switch (offset) {
    case LNIC_REG_MAGIC:
      return LNIC_MAGIC;
    case LNIC_REG_VERSION:
      return LNIC_VERSION;
    case LNIC_REG_FEATURES:
      return kFeatures;
    case LNIC_REG_DRIVER_FEATURES:
      return regs_.driver_features;
    case LNIC_REG_VIOLATIONS:  // counters are written by the event loop: relaxed loads
      return static_cast<uint32_t>(metrics_.violations());
    case LNIC_REG_PAGES_HELD:  // a pool holds far fewer than 2^32 pages
      return static_cast<uint32_t>(pages_out_.load(std::memory_order_relaxed));
    case LNIC_REG_POOL_BASE_LO:
      return static_cast<uint32_t>(pool_.config().window_gpa);
    case LNIC_REG_POOL_BASE_HI:
      return static_cast<uint32_t>(pool_.config().window_gpa >> 32);
    case LNIC_REG_POOL_SIZE_LO:
      return static_cast<uint32_t>(pool_.config().window_size);
    case LNIC_REG_POOL_SIZE_HI:
      return static_cast<uint32_t>(pool_.config().window_size >> 32);
    case LNIC_REG_STATUS:
      return regs_.status;
    case LNIC_REG_CONFIG_ERROR:
      return regs_.config_error;
    case LNIC_REG_MAC_LO:
      return uint32_t{cfg_.mac[0]} | uint32_t{cfg_.mac[1]} << 8 | uint32_t{cfg_.mac[2]} << 16 |
             uint32_t{cfg_.mac[3]} << 24;
    case LNIC_REG_MAC_HI:
      return uint32_t{cfg_.mac[4]} | uint32_t{cfg_.mac[5]} << 8;
    default:
      break;
  }
  for (int r = 0; r < 3; ++r) {
    if (offset == kRingLo[r]) return static_cast<uint32_t>(regs_.ring_gpa[r]);
    if (offset == kRingLo[r] + 4) return static_cast<uint32_t>(regs_.ring_gpa[r] >> 32);
    if (offset == kRingSize[r]) return regs_.ring_size[r];
  }
  metrics_.mmio_bad_access.inc_shared();
  return 0xFFFFFFFF;
}

void Lnic::write_reg(uint32_t offset, uint32_t value) {
  // Doorbells normally never get here (ioeventfd handles them in the kernel); when they
  // do (no ioeventfd, e.g. unit tests) they are forwarded to the event loop.
  if (offset == LNIC_REG_RET_DOORBELL || offset == LNIC_REG_TX_DOORBELL ||
      offset == LNIC_REG_FLOOR_ARM) {
    std::weak_ptr<Lnic> weak = weak_from_this();
    boost::asio::post(io_, [weak, offset] {
      auto self = weak.lock();
      if (!self) return;
      if (offset == LNIC_REG_RET_DOORBELL)
        self->on_return_doorbell();
      else if (offset == LNIC_REG_TX_DOORBELL)
        self->on_tx_doorbell();
      else
        self->floor_send(measure::rdtsc());
    });
    return;
  }
  std::unique_lock lock(mu_);
  for (int r = 0; r < 3; ++r) {
    if (offset == kRingLo[r]) {
      regs_.ring_gpa[r] = (regs_.ring_gpa[r] & ~0xFFFFFFFFull) | value;
      return;
    }
    if (offset == kRingLo[r] + 4) {
      regs_.ring_gpa[r] = (regs_.ring_gpa[r] & 0xFFFFFFFFull) | (uint64_t{value} << 32);
      return;
    }
    if (offset == kRingSize[r]) {
      regs_.ring_size[r] = value;
      return;
    }
  }
  switch (offset) {
    case LNIC_REG_DRIVER_FEATURES:  // checked at ENABLE, where a refusal can be named
      regs_.driver_features = value;
      return;
    case LNIC_REG_CONTROL: {
      // RESET first: RESET|ENABLE in one write finds the device STOPPING and the ENABLE
      // is ignored like any other ENABLE before the stop completed.
      if (value & LNIC_CTRL_RESET) reset_locked();
      std::future<void> activated;
      if (value & LNIC_CTRL_ENABLE) activated = enable_locked();
      if (value & LNIC_CTRL_RX_STOP) rx_stop_locked();
      lock.unlock();
      // Test only (rx_prod_beyond_ring): the write returns once the activation has
      // written the impossible prod and signalled it, so the interrupt reaches the guest
      // before its next instruction, inside the driver's open (bounded: a loop that is
      // paused or busy for longer only makes it come later).
      if (activated.valid()) activated.wait_for(std::chrono::milliseconds(200));
      return;
    }
    default:
      metrics_.mmio_bad_access.inc_shared();
      return;
  }
}

// Needs mu_.
void Lnic::set_status(uint32_t status) {
  regs_.status = status;
  status_.store(status, std::memory_order_release);
}

// Needs mu_. Every check the data path relies on is made here, once, on the vCPU
// thread: ring sizes, alignment, placement inside guest RAM, no overlap. (The MSI-X
// messages are checked when an entry is unmasked: MsixTable.) Only a fully valid set is handed to
// the event loop (activate), so the hot path never re-validates a ring's bounds. A failure names
// the register to blame.
std::future<void> Lnic::enable_locked() {
  metrics_.enables.inc_shared();
  auto fail = [&](uint32_t reg, const char* why) {
    regs_.status = LNIC_STATUS_CONFIG_ERROR;
    regs_.config_error = reg;
    status_.store(regs_.status, std::memory_order_release);
    metrics_.config_errors.inc_shared();
    if (metrics_.config_errors.get() <= 10) {  // a hostile guest must not flood the log
      spdlog::warn("{}: ENABLE rejected: register {:#x}: {}", label_, reg, why);
    }
    return std::future<void>{};
  };
  if (regs_.status & LNIC_STATUS_RUNNING) return {};  // already running: ignore
  if (regs_.status & LNIC_STATUS_STOPPING) {          // the driver must wait for the stop
    metrics_.ignored_controls.inc_shared();
    return {};
  }
  if ((regs_.driver_features & ~kFeatures) != 0) {
    return fail(LNIC_REG_DRIVER_FEATURES, "driver features name a bit FEATURES does not offer");
  }
  RingSet set;
  Ring* rings[3] = {&set.rx, &set.ret, &set.tx};
  for (int r = 0; r < 3; ++r) {
    const uint32_t size = regs_.ring_size[r];
    if (!is_pow2(size) || size < LNIC_RING_MIN || size > LNIC_RING_MAX) {
      return fail(kRingSize[r], "ring size must be a power of two in 8..4096");
    }
    const uint64_t gpa = regs_.ring_gpa[r];
    if (gpa % 4096 != 0) return fail(kRingLo[r], "ring address must be 4 KiB aligned");
    const uint64_t bytes = sizeof(lnic_ring_header) + uint64_t{size} * kEntrySize[r];
    auto mem = ram_.translate(gpa, bytes);
    if (!mem) return fail(kRingLo[r], "ring is not entirely inside guest RAM");
    rings[r]->mem = *mem;
    rings[r]->size = size;
  }
  for (int a = 0; a < 3; ++a) {  // rings must not overlap: one guest write would feed two
    for (int b = a + 1; b < 3; ++b) {
      const auto& x = rings[a]->mem;
      const auto& y = rings[b]->mem;
      if (x.data() < y.data() + y.size() && y.data() < x.data() + x.size()) {
        return fail(kRingLo[b], "rings overlap");
      }
    }
  }
  regs_.config_error = 0;
  set_status(LNIC_STATUS_RUNNING);
  const size_t k = activations_posted_++;
  const bool sync =
      k < cfg_.test_hostile.size() && cfg_.test_hostile[k] == HostileKind::rx_prod_beyond_ring;
  auto done = sync ? std::make_shared<std::promise<void>>() : nullptr;
  std::future<void> activated = done ? done->get_future() : std::future<void>{};
  // Weak: a VM torn down before the loop runs the post must not be kept alive by it.
  std::weak_ptr<Lnic> weak = weak_from_this();
  boost::asio::post(io_, [weak, set, features = regs_.driver_features, done] {
    if (auto self = weak.lock()) self->activate(set, features);
    if (done) done->set_value();
  });
  return activated;
}

// Needs mu_. A running device cannot stop here: the event loop may be in the middle of
// writing a completion. So STATUS says STOPPING until the event loop has run the posted
// deactivate (after every step it had begun), and a driver polls for STOPPING to clear
// before it frees the rings. A reset of a device that is not running (or already
// stopping: a reset storm posts one stop, not one per write) has nothing to wait for.
void Lnic::reset_locked() {
  metrics_.resets.inc_shared();
  regs_.config_error = 0;
  regs_.driver_features = 0;  // the next driver acknowledges what it uses itself
  if (regs_.status & LNIC_STATUS_STOPPING) return;
  if ((regs_.status & LNIC_STATUS_RUNNING) == 0) {
    set_status(0);
    return;
  }
  set_status(LNIC_STATUS_STOPPING);
  std::weak_ptr<Lnic> weak = weak_from_this();
  boost::asio::post(io_, [weak] {
    if (auto self = weak.lock()) self->deactivate();
  });
}

// Needs mu_. The first half of the drain: the event loop stops writing completions and
// then sets RX_STOPPED; RETURN and TX go on being served until RESET.
void Lnic::rx_stop_locked() {
  if ((regs_.status & LNIC_STATUS_RUNNING) == 0) {
    metrics_.ignored_controls.inc_shared();
    return;
  }
  metrics_.rx_stops.inc_shared();
  std::weak_ptr<Lnic> weak = weak_from_this();
  boost::asio::post(io_, [weak] {
    if (auto self = weak.lock()) self->stop_rx();
  });
}

}  // namespace labyrinth::devices::lnic
