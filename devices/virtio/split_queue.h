// devices/virtio/split_queue.h — one split virtqueue, every guest value validated.
//
// The driver owns the descriptor table and the avail ring, the device the used ring
// (virtio 1.2, 2.7). Everything the guest wrote is untrusted: create() checks the
// queue size (power of two, <= kMaxSize), the alignment of the three areas and that
// each lies inside guest RAM; pop() reads the avail index and each descriptor once
// (a copy: the guest cannot change a value between check and use) and checks the head
// and every next index (< size), each buffer's address and length (inside RAM, no
// overflow, not empty), the chain's length (<= size descriptors: a loop ends there),
// that no readable buffer follows a writable one, and that no descriptor is indirect
// (VIRTIO_F_INDIRECT_DESC is not offered). A malformed chain is consumed: its head
// goes back on the used ring with length 0 when the head index is valid, the caller
// counts the error, and the queue goes on with the next chain.
//
//   auto q = SplitQueue::create(ram, size, desc_gpa, avail_gpa, used_gpa);
//   if (!q) count(q.error());                       // the driver's queue setup is bad
//   SplitQueue::Chain chain;
//   while (auto r = q->pop(chain)) {                 // false: nothing available
//     if (!*r) break;
//     ... chain.seg[0 .. chain.count) ...            // host spans inside guest RAM
//     q->push_used(chain.head, written);
//   }                                                // r.error(): malformed, counted
//   if (q->needs_interrupt()) irq.trigger();
//
// Threads: one thread (the device's event loop) uses a queue. The guest writes the
// avail side concurrently: avail.idx is read with acquire (pairs with the driver's
// write barrier before it publishes idx); used.idx is stored with release after the
// used element (pairs with the driver's read barrier after it reads used.idx).
// needs_interrupt() issues a full fence between the used.idx store and the
// avail.flags load (the driver's store of flags, then load of used.idx, is the mirror).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>

#include "devices/guest_ram.h"

namespace labyrinth::devices::virtio {

enum class QueueError : uint8_t {
  bad_size = 1,    // queue size 0, not a power of two, or > kMaxSize
  misaligned,      // desc not 16-byte, avail not 2-byte, used not 4-byte aligned
  ring_outside,    // a ring (or the table) is not inside guest RAM
  avail_idx_jump,  // avail.idx ran more than size entries ahead of the device
  bad_head,        // head index >= size
  bad_next,        // a next index >= size
  too_long,        // more than size descriptors: a loop
  bad_buffer,      // address/length outside RAM or overflowing
  zero_length,     // an empty buffer
  bad_order,       // a readable buffer after a writable one
  indirect,        // VIRTQ_DESC_F_INDIRECT without the feature
};
std::string_view to_string(QueueError e) noexcept;

class SplitQueue {
 public:
  static constexpr uint16_t kMaxSize = 256;

  struct Segment {
    std::span<std::byte> bytes;  // inside guest RAM
    bool writable = false;
  };
  struct Chain {
    uint16_t head = 0;
    uint32_t count = 0;     // segments in seg
    uint64_t readable = 0;  // bytes in the readable segments
    uint64_t writable = 0;  // bytes in the writable segments
    std::array<Segment, kMaxSize> seg{};
  };

  static std::expected<SplitQueue, QueueError> create(const GuestRam& ram, uint16_t size,
                                                      uint64_t desc_gpa, uint64_t avail_gpa,
                                                      uint64_t used_gpa);

  // The next available chain into out: true; nothing available: false; a malformed
  // chain: its error (already consumed and returned with length 0 where possible).
  std::expected<bool, QueueError> pop(Chain& out);
  // Returns a chain to the driver: len bytes written into its writable buffers.
  void push_used(uint16_t head, uint32_t len);
  // True when the driver has not suppressed interrupts (VIRTQ_AVAIL_F_NO_INTERRUPT).
  bool needs_interrupt() const;
  // True when the driver has made chains available that pop() has not taken.
  bool has_available() const;
  uint16_t size() const { return size_; }

 private:
  SplitQueue(const GuestRam& ram, uint16_t size, std::span<std::byte> desc,
             std::span<std::byte> avail, std::span<std::byte> used)
      : ram_(&ram), size_(size), desc_(desc), avail_(avail), used_(used) {}
  uint16_t avail_idx() const;  // acquire
  std::expected<void, QueueError> walk(uint16_t head, Chain& out) const;

  const GuestRam* ram_;
  uint16_t size_;
  std::span<std::byte> desc_, avail_, used_;
  uint16_t next_avail_ = 0;  // the device's position in the avail ring
  uint16_t next_used_ = 0;   // used.idx as the device last published it
};

}  // namespace labyrinth::devices::virtio
