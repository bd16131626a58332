// guest/drivers/lnic/lnic_ring.h — pure lnic logic shared by the guest driver
// (lnic_*.cc) and its host-side tests: ring index arithmetic, checks of what the
// device writes, the MSI message, the pktgen frame check and page-ownership
// bookkeeping. No MMIO, no globals, no runtime dependencies: everything here
// compiles for the host too.
//
//   uint32_t avail = lnic::ring_used(prod, cons);          // free-running uint32
//   if (!lnic::ring_distance_ok(prod, cons, size)) ...     // device bug: > size
//   lnic::CompletionError e = lnic::check_completion(c, pool_base, pool_size);
//   lnic::PktgenResult r = lnic::check_pktgen(frame, len);
//
// Index rules (guest/abi/lnic.h): indices are free-running uint32 counters; the
// entry of index i is i & (size - 1); used = prod - cons (mod 2^32), never > size.
// Wrap-around of the counters themselves is harmless because only differences
// are ever compared.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest/abi/lnic.h"

namespace guest::lnic {

inline constexpr uint64_t kPageSize = LNIC_PAGE_SIZE;

// --- ring arithmetic -------------------------------------------------------

constexpr bool power_of_two(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}
constexpr bool ring_size_valid(uint32_t size) {
  return size >= LNIC_RING_MIN && size <= LNIC_RING_MAX && power_of_two(size);
}
constexpr uint32_t ring_slot(uint32_t index, uint32_t size) {
  return index & (size - 1);
}
constexpr uint32_t ring_used(uint32_t prod, uint32_t cons) {
  return prod - cons;
}
// Only meaningful when ring_distance_ok(prod, cons, size).
constexpr uint32_t ring_free(uint32_t prod, uint32_t cons, uint32_t size) {
  return size - (prod - cons);
}
// The invariant every producer/consumer pair must keep: 0 <= prod - cons <= size.
constexpr bool ring_distance_ok(uint32_t prod, uint32_t cons, uint32_t size) {
  return prod - cons <= size;
}
// A consumer's index moving from old_cons to new_cons may not pass prod (checked
// by the producer side, e.g. the guest reading the device's TX/RETURN cons).
constexpr bool cons_advance_ok(uint32_t old_cons, uint32_t new_cons, uint32_t prod) {
  return new_cons - old_cons <= prod - old_cons;
}
// Bytes a ring occupies: header followed by `entries` entries, rounded to pages.
constexpr uint64_t ring_bytes(uint32_t entries, size_t entry_size) {
  const uint64_t raw = sizeof(lnic_ring_header) + uint64_t{entries} * entry_size;
  return (raw + kPageSize - 1) & ~(kPageSize - 1);
}

// --- interrupts ------------------------------------------------------------

// x86 MSI message for fixed delivery, edge, physical destination apic_id.
constexpr uint32_t msi_address_lo(uint32_t apic_id) {
  return 0xFEE00000u | ((apic_id & 0xFFu) << 12);
}
constexpr uint32_t msi_data(uint8_t vector) {
  return vector;
}

// --- RX completions --------------------------------------------------------

enum class CompletionError : uint32_t {
  kNone = 0,
  kLenZero,          // len == 0
  kLenTooBig,        // len > LNIC_FRAME_MAX
  kPageMisaligned,   // page_gpa not 4 KiB aligned
  kPageOutsidePool,  // page_gpa not inside [pool_base, pool_base + pool_size)
  kFlagsNonZero,     // reserved flags set (reported, not fatal)
};
inline constexpr uint32_t kCompletionErrorKinds = 6;

constexpr const char* to_string(CompletionError e) {
  switch (e) {
    case CompletionError::kNone:
      return "ok";
    case CompletionError::kLenZero:
      return "len is 0";
    case CompletionError::kLenTooBig:
      return "len > LNIC_FRAME_MAX";
    case CompletionError::kPageMisaligned:
      return "page_gpa not 4 KiB aligned";
    case CompletionError::kPageOutsidePool:
      return "page_gpa outside the pool window";
    case CompletionError::kFlagsNonZero:
      return "reserved flags set";
  }
  return "?";
}

constexpr bool page_in_pool(uint64_t gpa, uint64_t pool_base, uint64_t pool_size) {
  // Written as a difference so base + size overflowing cannot fool it.
  return gpa >= pool_base && gpa - pool_base < pool_size &&
         pool_size - (gpa - pool_base) >= kPageSize;
}

// Address checks first (they decide whether the page can be given back at all),
// then length, then flags.
constexpr CompletionError check_completion(uint64_t page_gpa, uint32_t len, uint32_t flags,
                                           uint64_t pool_base, uint64_t pool_size) {
  if ((page_gpa & (kPageSize - 1)) != 0) return CompletionError::kPageMisaligned;
  if (!page_in_pool(page_gpa, pool_base, pool_size)) return CompletionError::kPageOutsidePool;
  if (len == 0) return CompletionError::kLenZero;
  if (len > LNIC_FRAME_MAX) return CompletionError::kLenTooBig;
  if (flags != 0) return CompletionError::kFlagsNonZero;
  return CompletionError::kNone;
}
// Whether the page of a completion with error e is a real pool page the guest now
// owns and must give back.
constexpr bool completion_page_usable(CompletionError e) {
  return e != CompletionError::kPageMisaligned && e != CompletionError::kPageOutsidePool;
}

// --- pktgen frames ---------------------------------------------------------

enum class PktgenStatus : uint32_t {
  kOk = 0,
  kTooShort,      // shorter than struct lnic_pktgen_header
  kBadEthertype,  // neither 0x88B5 in network nor in host byte order
  kBadMagic,      // neither 0x4C42 in network nor in host byte order
  kBadPattern,    // payload byte bad_offset differs from pattern + i
};

constexpr const char* to_string(PktgenStatus s) {
  switch (s) {
    case PktgenStatus::kOk:
      return "ok";
    case PktgenStatus::kTooShort:
      return "shorter than the pktgen header";
    case PktgenStatus::kBadEthertype:
      return "bad ethertype";
    case PktgenStatus::kBadMagic:
      return "bad magic";
    case PktgenStatus::kBadPattern:
      return "payload pattern mismatch";
  }
  return "?";
}

struct PktgenResult {
  PktgenStatus status = PktgenStatus::kOk;
  bool ethertype_network = false;  // ethertype was big-endian (network order) in the frame
  bool magic_network = false;      // magic was big-endian ('L','B') in the frame
  uint64_t seq = 0;                // little-endian (host order), like every other field
  uint64_t t_sched = 0;
  uint8_t pattern = 0;
  uint32_t bad_offset = 0;  // frame offset of the first bad payload byte
};

// kPatternRef[j] = j & 0xFF: every pktgen payload is a window of it.
struct PatternRef {
  uint8_t bytes[LNIC_FRAME_MAX + 256 + 8];
};
constexpr PatternRef make_pattern_ref() {
  PatternRef ref{};
  for (uint32_t j = 0; j < sizeof(ref.bytes); ++j) ref.bytes[j] = static_cast<uint8_t>(j);
  return ref;
}
inline constexpr PatternRef kPatternRefTable = make_pattern_ref();
inline constexpr const uint8_t* kPatternRef = kPatternRefTable.bytes;

inline uint64_t load_le64(const uint8_t* p) {  // x86: one unaligned load
  uint64_t v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// Byte order: lnic.h does not say. An Ethernet ethertype is big-endian on the
// wire, and `0x4C42 "LB"` spells 'L','B' only in big-endian; but a device that
// assigns the struct fields in host order writes them little-endian. Each of the
// two fields is accepted in either order; the result says which was seen so the
// caller can report it.
inline PktgenResult check_pktgen(const uint8_t* frame, uint32_t len) {
  PktgenResult r;
  constexpr uint32_t kHdr = sizeof(lnic_pktgen_header);
  if (len < kHdr) {
    r.status = PktgenStatus::kTooShort;
    return r;
  }
  const uint16_t et_be = static_cast<uint16_t>(frame[12] << 8 | frame[13]);
  const uint16_t et_le = static_cast<uint16_t>(frame[13] << 8 | frame[12]);
  const uint16_t mg_be = static_cast<uint16_t>(frame[14] << 8 | frame[15]);
  const uint16_t mg_le = static_cast<uint16_t>(frame[15] << 8 | frame[14]);
  if (et_be == LNIC_PKTGEN_ETHERTYPE) {
    r.ethertype_network = true;
  } else if (et_le != LNIC_PKTGEN_ETHERTYPE) {
    r.status = PktgenStatus::kBadEthertype;
    return r;
  }
  if (mg_be == LNIC_PKTGEN_MAGIC) {
    r.magic_network = true;
  } else if (mg_le != LNIC_PKTGEN_MAGIC) {
    r.status = PktgenStatus::kBadMagic;
    return r;
  }
  r.seq = load_le64(frame + 16);
  r.t_sched = load_le64(frame + 24);
  r.pattern = frame[32];

  // Payload byte i = (uint8_t)(pattern + i), i.e. the reference bytes j & 0xFF
  // starting at j = pattern. Compared with REPE CMPSQ: on the nested host every
  // guest instruction is expensive (~0.5-1 us), and one string-instruction
  // iteration per 8 bytes is ~8x cheaper than any loop.
  const uint8_t* p = frame + kHdr;
  const uint32_t n = len - kHdr;
  const uint8_t* expect = kPatternRef + r.pattern;
  const uint32_t words = n / 8;
  uint32_t i = 0;
  if (words != 0) {
    const void* a = p;
    const void* b = expect;
    uint64_t left = words;
    bool equal;
    asm volatile("repe cmpsq" : "+S"(a), "+D"(b), "+c"(left), "=@cce"(equal) : : "memory", "cc");
    // On a mismatch CMPSQ stopped after the differing word: look inside it.
    i = equal ? words * 8 : (words - static_cast<uint32_t>(left) - 1) * 8;
  }
  for (; i < n; ++i) {
    if (p[i] != expect[i]) {
      r.status = PktgenStatus::kBadPattern;
      r.bad_offset = kHdr + i;
      return r;
    }
  }
  return r;
}

// Fills a frame the way the pktgen backend does (used by guests that transmit
// generated traffic, e.g. lnic_echo's kick frames, and by the tests).
inline void fill_pktgen(uint8_t* frame, uint32_t len, const uint8_t src_mac[6], uint64_t seq,
                        uint8_t pattern, bool ethertype_network, bool magic_network) {
  constexpr uint32_t kHdr = sizeof(lnic_pktgen_header);
  for (uint32_t i = 0; i < len && i < kHdr; ++i) frame[i] = 0;
  if (len < kHdr) return;
  for (int i = 0; i < 6; ++i) frame[i] = 0xFF;
  for (int i = 0; i < 6; ++i) frame[6 + i] = src_mac[i];
  const uint16_t et = LNIC_PKTGEN_ETHERTYPE, mg = LNIC_PKTGEN_MAGIC;
  frame[12] = static_cast<uint8_t>(ethertype_network ? et >> 8 : et);
  frame[13] = static_cast<uint8_t>(ethertype_network ? et : et >> 8);
  frame[14] = static_cast<uint8_t>(magic_network ? mg >> 8 : mg);
  frame[15] = static_cast<uint8_t>(magic_network ? mg : mg >> 8);
  for (int i = 0; i < 8; ++i) frame[16 + i] = static_cast<uint8_t>(seq >> (8 * i));
  frame[32] = pattern;
  for (uint32_t i = 0; i < len - kHdr; ++i) frame[kHdr + i] = static_cast<uint8_t>(pattern + i);
}

// --- sequence numbers ------------------------------------------------------

// Watches a stream of sequence numbers that should count up from `first`:
// a jump forward is a gap (frames lost before us, counted), a number at or
// below one already seen is out of order.
struct SeqTracker {
  uint64_t next = 0;  // the number expected next
  uint64_t seen = 0;
  uint64_t gaps = 0;          // numbers skipped in total
  uint64_t gap_events = 0;    // how many jumps
  uint64_t out_of_order = 0;  // seq < next

  // Returns false for an out-of-order number.
  bool observe(uint64_t seq) {
    ++seen;
    if (seq == next) {
      ++next;
      return true;
    }
    if (seq > next) {
      gaps += seq - next;
      ++gap_events;
      next = seq + 1;
      return true;
    }
    ++out_of_order;
    return false;
  }
};

// --- page ownership --------------------------------------------------------

// One bit per pool page the guest currently owns (device -> guest on an RX
// completion, guest -> device on a RETURN entry). Backed by caller-provided,
// zeroed storage; pages beyond the bitmap's reach are not tracked (always
// accepted) and counted in `untracked`.
class PageOwnership {
 public:
  PageOwnership() = default;
  PageOwnership(uint64_t* bits, uint64_t words, uint64_t pool_base, uint64_t pool_size)
      : bits_(bits), pages_(words * 64), base_(pool_base) {
    const uint64_t pool_pages = pool_size / kPageSize;
    if (pool_pages < pages_) pages_ = pool_pages;
  }

  // Guest takes page (it arrived in a completion). False: already owned.
  bool take(uint64_t gpa) { return flip(gpa, true); }
  // Guest gives page back. False: the guest does not own it.
  bool give(uint64_t gpa) { return flip(gpa, false); }
  bool owns(uint64_t gpa) const {
    uint64_t w, m;
    if (!locate(gpa, &w, &m)) return true;
    return (bits_[w] & m) != 0;
  }
  bool tracked(uint64_t gpa) const {
    uint64_t w, m;
    return locate(gpa, &w, &m);
  }
  uint64_t owned() const { return owned_; }
  uint64_t untracked() const { return untracked_; }

 private:
  bool locate(uint64_t gpa, uint64_t* word, uint64_t* mask) const {
    if (bits_ == nullptr || gpa < base_) return false;
    const uint64_t page = (gpa - base_) / kPageSize;
    if (page >= pages_) return false;
    *word = page / 64;
    *mask = uint64_t{1} << (page % 64);
    return true;
  }
  bool flip(uint64_t gpa, bool to_owned) {
    uint64_t w, m;
    if (!locate(gpa, &w, &m)) {
      ++untracked_;
      return true;
    }
    const bool owned_now = (bits_[w] & m) != 0;
    if (owned_now == to_owned) return false;
    bits_[w] ^= m;
    owned_ = to_owned ? owned_ + 1 : owned_ - 1;
    return true;
  }

  uint64_t* bits_ = nullptr;
  uint64_t pages_ = 0;
  uint64_t base_ = 0;
  uint64_t owned_ = 0;
  uint64_t untracked_ = 0;
};

}  // namespace guest::lnic
