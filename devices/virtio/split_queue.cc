#include "devices/virtio/split_queue.h"

#include <atomic>
#include <cstring>

#include "devices/virtio/virtio_abi.h"

namespace labyrinth::devices::virtio {

std::string_view to_string(QueueError e) noexcept {
  switch (e) {
    case QueueError::bad_size:
      return "queue size is 0, not a power of two or too large";
    case QueueError::misaligned:
      return "a ring address is misaligned";
    case QueueError::ring_outside:
      return "a ring is outside guest RAM";
    case QueueError::avail_idx_jump:
      return "avail.idx is more than a queue ahead";
    case QueueError::bad_head:
      return "head index out of range";
    case QueueError::bad_next:
      return "next index out of range";
    case QueueError::too_long:
      return "chain longer than the queue (a loop)";
    case QueueError::bad_buffer:
      return "buffer outside guest RAM";
    case QueueError::zero_length:
      return "zero-length buffer";
    case QueueError::bad_order:
      return "readable buffer after a writable one";
    case QueueError::indirect:
      return "indirect descriptor (not negotiated)";
  }
  return "unknown queue error";
}

namespace {
// Guest-shared 16-bit fields: aligned (create() checked), accessed atomically.
std::atomic_ref<uint16_t> u16_at(std::span<std::byte> mem, size_t offset) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(mem.data() + offset));
}
}  // namespace

std::expected<SplitQueue, QueueError> SplitQueue::create(const GuestRam& ram, uint16_t size,
                                                         uint64_t desc_gpa, uint64_t avail_gpa,
                                                         uint64_t used_gpa) {
  if (size == 0 || size > kMaxSize || (size & (size - 1)) != 0) {
    return std::unexpected(QueueError::bad_size);
  }
  if (desc_gpa % 16 != 0 || avail_gpa % 2 != 0 || used_gpa % 4 != 0) {
    return std::unexpected(QueueError::misaligned);
  }
  auto desc = ram.translate(desc_gpa, sizeof(VirtqDesc) * uint64_t{size});
  auto avail = ram.translate(avail_gpa, avail_ring_bytes(size));
  auto used = ram.translate(used_gpa, used_ring_bytes(size));
  if (!desc || !avail || !used) return std::unexpected(QueueError::ring_outside);
  SplitQueue q(ram, size, *desc, *avail, *used);
  // A queue starts empty: whatever the driver left in used.idx is where we continue.
  q.next_used_ = u16_at(q.used_, 2).load(std::memory_order_relaxed);
  q.next_avail_ = q.next_used_;
  return q;
}

uint16_t SplitQueue::avail_idx() const {
  return u16_at(avail_, 2).load(std::memory_order_acquire);  // pairs with the driver's wmb
}

bool SplitQueue::has_available() const {
  return avail_idx() != next_avail_;
}

// The next available chain, validated. A chain that fails validation after its head was
// read is given back used with length 0, so the driver gets its buffers back; a bad
// head or an index jump cannot be given back and leaves the queue for the caller to stop.
std::expected<bool, QueueError> SplitQueue::pop(Chain& out) {
  const uint16_t idx = avail_idx();
  if (idx == next_avail_) return false;
  if (static_cast<uint16_t>(idx - next_avail_) > size_) {
    return std::unexpected(QueueError::avail_idx_jump);  // nothing consumed: the ring is corrupt
  }
  const uint16_t head =
      u16_at(avail_, 4 + 2 * size_t{static_cast<uint16_t>(next_avail_ & (size_ - 1))})
          .load(std::memory_order_relaxed);
  ++next_avail_;
  out.head = head;
  if (head >= size_) return std::unexpected(QueueError::bad_head);  // nothing to give back
  if (auto r = walk(head, out); !r) {
    push_used(head, 0);
    return std::unexpected(r.error());
  }
  return true;
}

// Follows next links from head, translating each buffer once. A chain can be at most
// size_ long: a longer one revisits a descriptor (a loop the guest made).
std::expected<void, QueueError> SplitQueue::walk(uint16_t head, Chain& out) const {
  out.count = 0;
  out.readable = out.writable = 0;
  uint16_t i = head;
  for (;;) {
    if (out.count == size_) return std::unexpected(QueueError::too_long);
    VirtqDesc d;
    std::memcpy(&d, desc_.data() + size_t{i} * sizeof d, sizeof d);  // one read of each field
    if ((d.flags & kDescFIndirect) != 0) return std::unexpected(QueueError::indirect);
    if (d.len == 0) return std::unexpected(QueueError::zero_length);
    auto bytes = ram_->translate(d.addr, d.len);
    if (!bytes) return std::unexpected(QueueError::bad_buffer);
    const bool writable = (d.flags & kDescFWrite) != 0;
    if (!writable && out.writable != 0) return std::unexpected(QueueError::bad_order);
    out.seg[out.count++] = Segment{*bytes, writable};
    (writable ? out.writable : out.readable) += d.len;
    if ((d.flags & kDescFNext) == 0) return {};
    if (d.next >= size_) return std::unexpected(QueueError::bad_next);
    i = d.next;
  }
}

void SplitQueue::push_used(uint16_t head, uint32_t len) {
  const VirtqUsedElem e{head, len};
  std::memcpy(used_.data() + 4 + size_t{static_cast<uint16_t>(next_used_ & (size_ - 1))} * sizeof e,
              &e, sizeof e);
  ++next_used_;
  // Release: the element (and the buffer contents) before the index the driver polls.
  u16_at(used_, 2).store(next_used_, std::memory_order_release);
}

bool SplitQueue::needs_interrupt() const {
  // The used.idx store above before the flags load (the driver: flags store, then used.idx load).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return (u16_at(avail_, 0).load(std::memory_order_relaxed) & kAvailFNoInterrupt) == 0;
}

}  // namespace labyrinth::devices::virtio
