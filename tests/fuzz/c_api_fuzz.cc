// tests/fuzz/c_api_fuzz.cc — random handles and owners through the C API
// (allocator/labyrinth_alloc.h) against two real pools on one real KVM VM.
//
// A model beside the pools knows every page handed out (index, generation, pool id,
// owner). The input picks operations (atomic alloc, cached/uncached free — through this
// pool's cache or, with this pool's handle, the other pool's —, transfer, lookup_gpa, transfer_gpa
// with or without a generation) and handles: exact live ones, live ones with a field changed
// (generation — any of its 64 bits —, index, gpa, host, pool id), freed ones, the other
// pool's, or random bytes; owners right, wrong or 0. Invariants: an operation succeeds
// iff the model says the handle is live and the owner right; a rejected one returns
// the error the checks promise, in their order (FOREIGN_POOL, OUT_OF_WINDOW, STALE for
// a generation never issued, BAD_HANDLE for a gpa that is not the index's, then STALE / BAD_HANDLE
// / DOUBLE_FREE / NOT_OWNER against the page) and leaves the page as it was; every violation is
// counted exactly once (the violation_* counters equal the model's tally, per kind); frees and
// transfers are counted; a page is never handed out twice at once, arrives zeroed, and lookup_gpa
// finds exactly the live pages (with their live handle; a census of every page every 16
// operations and at the end).
//
// Host-only pools (labyrinth_pool_create_host_only): no KVM needed.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "allocator/labyrinth_alloc.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// The pools' geometry (both the same): a 1 GiB window of which at most 2 chunks of 16
// pages are ever backed; page indexes stop at kMaxPages.
constexpr uint64_t kChunk = 64 << 10;
constexpr uint64_t kWindowSize = 1ull << 30;
constexpr uint32_t kMaxPages = 2 * kChunk / 4096;
constexpr uint64_t kGenLimit = 1ull << 62;

struct Live {
  labyrinth_page page;
  uint32_t owner;
};

struct PoolUnderTest {
  labyrinth_pool* pool = nullptr;
  labyrinth_cache* cache = nullptr;
  std::map<uint32_t, Live> live;  // by page index
  std::vector<labyrinth_page> dead;
  // Expected counters.
  uint64_t frees = 0, transfers = 0, exhausted = 0;
  uint64_t v_double = 0, v_owner = 0, v_stale = 0, v_window = 0, v_foreign = 0;
  uint64_t v_handle = 0, v_cache = 0;
  uint64_t window_gpa = 0;

  void expect_violation(int err) {
    switch (err) {
      case LABYRINTH_E_DOUBLE_FREE:
        ++v_double;
        break;
      case LABYRINTH_E_NOT_OWNER:
        ++v_owner;
        break;
      case LABYRINTH_E_STALE_HANDLE:
        ++v_stale;
        break;
      case LABYRINTH_E_OUT_OF_WINDOW:
        ++v_window;
        break;
      case LABYRINTH_E_FOREIGN_POOL:
        ++v_foreign;
        break;
      case LABYRINTH_E_BAD_HANDLE:
        ++v_handle;
        break;
      case LABYRINTH_E_BAD_CACHE:
        ++v_cache;
        break;
      default:
        break;
    }
  }
  bool is_live(const labyrinth_page& p, uint32_t pool_id) const {
    auto it = live.find(p.index);
    return p.pool_id == pool_id && it != live.end() && it->second.page.generation == p.generation &&
           it->second.page.gpa == p.gpa && it->second.page.host == p.host;
  }
  // The error the handle checks give before the page's word is read (0: none). After
  // them the page decides: STALE, BAD_HANDLE (host), DOUBLE_FREE or NOT_OWNER.
  int precheck(const labyrinth_page& p, uint32_t pool_id) const {
    if (p.pool_id != pool_id) return LABYRINTH_E_FOREIGN_POOL;
    if (p.index >= kMaxPages) return LABYRINTH_E_OUT_OF_WINDOW;
    if (p.generation >= kGenLimit) return LABYRINTH_E_STALE_HANDLE;
    if (p.gpa != window_gpa + uint64_t{p.index} * 4096) return LABYRINTH_E_BAD_HANDLE;
    return 0;
  }
  void check_counters() const {
    labyrinth_pool_stats s;
    labyrinth_pool_get_stats(pool, &s);
    FUZZ_CHECK(s.frees == frees, "frees %llu, model %llu", (unsigned long long)s.frees,
               (unsigned long long)frees);
    FUZZ_CHECK(s.transfers == transfers, "transfers %llu, model %llu",
               (unsigned long long)s.transfers, (unsigned long long)transfers);
    FUZZ_CHECK(s.fail_exhausted == exhausted, "fail_exhausted %llu, model %llu",
               (unsigned long long)s.fail_exhausted, (unsigned long long)exhausted);
    FUZZ_CHECK(s.violation_double_free == v_double && s.violation_not_owner == v_owner &&
                   s.violation_stale == v_stale && s.violation_out_of_window == v_window &&
                   s.violation_foreign_pool == v_foreign && s.violation_bad_handle == v_handle &&
                   s.violation_bad_cache == v_cache,
               "violations df/no/st/ow/fp %llu/%llu/%llu/%llu/%llu, model %llu/%llu/%llu/%llu/%llu",
               (unsigned long long)s.violation_double_free,
               (unsigned long long)s.violation_not_owner, (unsigned long long)s.violation_stale,
               (unsigned long long)s.violation_out_of_window,
               (unsigned long long)s.violation_foreign_pool, (unsigned long long)v_double,
               (unsigned long long)v_owner, (unsigned long long)v_stale,
               (unsigned long long)v_window, (unsigned long long)v_foreign);
  }
  // Every page the pool can have: allocated (lookup_gpa finds it) iff the model holds it
  // live, with the live handle. No page is handed out twice: each is one index.
  void census(uint32_t pool_id) {
    for (uint32_t i = 0; i < kMaxPages; ++i) {
      labyrinth_page p;
      const int err = labyrinth_page_lookup_gpa(pool, window_gpa + uint64_t{i} * 4096, &p);
      auto it = live.find(i);
      if (err == LABYRINTH_OK) {
        FUZZ_CHECK(it != live.end() && p.generation == it->second.page.generation &&
                       p.host == it->second.page.host && p.pool_id == pool_id,
                   "page %u is allocated, the model does not hold it live", i);
      } else {
        FUZZ_CHECK(it == live.end(), "live page %u: lookup says %d", i, err);
        FUZZ_CHECK(err == LABYRINTH_E_DOUBLE_FREE || err == LABYRINTH_E_OUT_OF_WINDOW,
                   "lookup of page %u: %d", i, err);
        expect_violation(err == LABYRINTH_E_OUT_OF_WINDOW ? err : 0);  // an unbacked chunk
      }
    }
    check_counters();
  }
};

// What a rejected handle may get: the precheck's error if it has one, else one the page
// decides (OUT_OF_WINDOW: its chunk is not backed).
bool expected_rejection(int err, int pre) {
  if (pre != 0) return err == pre;
  return err == LABYRINTH_E_STALE_HANDLE || err == LABYRINTH_E_BAD_HANDLE ||
         err == LABYRINTH_E_DOUBLE_FREE || err == LABYRINTH_E_NOT_OWNER ||
         err == LABYRINTH_E_OUT_OF_WINDOW;
}

uint32_t pick_owner(FuzzedDataProvider& in, uint32_t right) {
  switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0:
      return 0;
    case 1:
      return in.ConsumeIntegralInRange<uint32_t>(1, 4);
    case 2:
      return in.ConsumeIntegral<uint32_t>();
    default:
      return right;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::array<PoolUnderTest, 2> pools;
  std::array<uint32_t, 2> ids{};
  const bool zero_on_free = in.ConsumeBool();
  for (int i = 0; i < 2; ++i) {
    labyrinth_pool_config cfg;
    labyrinth_pool_config_init(&cfg);
    cfg.window_gpa = (4ull + i) << 30;
    cfg.window_size = kWindowSize;
    cfg.chunk_bytes = kChunk;
    cfg.initial_chunks = 1;
    cfg.max_chunks = 2;
    cfg.min_pages = 2;
    cfg.low_pages = 4;
    cfg.high_pages = 8;
    cfg.zero_on_free = zero_on_free;
    pools[i].window_gpa = cfg.window_gpa;
    const int err = labyrinth_pool_create_host_only(&cfg, &pools[i].pool);
    FUZZ_CHECK(err == LABYRINTH_OK, "pool create: %s", labyrinth_strerror(err));
    pools[i].cache = labyrinth_cache_attach(pools[i].pool);
    FUZZ_CHECK(pools[i].cache != nullptr, "cache attach");
  }
  // The pool id is only visible in handles: learn it from a first allocation.
  for (int i = 0; i < 2; ++i) {
    labyrinth_page p;
    int err = 0;
    FUZZ_CHECK(labyrinth_void_alloc_page_gfp_atomic_exclusive(pools[i].cache, 1, &p, &err),
               "first alloc");
    ids[i] = p.pool_id;
    pools[i].live[p.index] = {p, 1};
  }
  FUZZ_CHECK(ids[0] != ids[1], "two pools share an id");

  int steps = 0;
  while (in.remaining_bytes() > 0 && ++steps <= 256) {
    const int which = in.ConsumeIntegralInRange<int>(0, 1);
    PoolUnderTest& t = pools[which];
    const uint32_t id = ids[which];
    const int op = in.ConsumeIntegralInRange<int>(0, 6);

    if (op == 0) {  // atomic alloc
      const uint32_t owner = pick_owner(in, 1 + in.ConsumeIntegralInRange<uint32_t>(0, 3));
      labyrinth_page p;
      int err = -1;
      void* host = labyrinth_void_alloc_page_gfp_atomic_exclusive(t.cache, owner, &p, &err);
      if (owner == 0) {
        FUZZ_CHECK(host == nullptr && err == LABYRINTH_E_BAD_OWNER, "alloc for owner 0: %d", err);
      } else if (host == nullptr) {
        FUZZ_CHECK(err == LABYRINTH_E_EXHAUSTED, "atomic alloc failed with %d", err);
        ++t.exhausted;
      } else {
        FUZZ_CHECK(err == LABYRINTH_OK && p.pool_id == id && p.host == host, "alloc result");
        FUZZ_CHECK(!t.live.contains(p.index), "page %u handed out twice", p.index);
        const auto* b = static_cast<const uint8_t*>(host);
        FUZZ_CHECK(std::all_of(b, b + 4096, [](uint8_t x) { return x == 0; }), "page %u not zeroed",
                   p.index);
        std::memset(host, 0xEE, 4096);  // a later owner must not see this
        t.live[p.index] = {p, owner};
      }
      continue;
    }
    if (op == 4) {  // lookup_gpa
      labyrinth_page p;
      if (!t.live.empty() && in.ConsumeBool()) {
        auto it = t.live.begin();
        std::advance(it, in.ConsumeIntegralInRange<size_t>(0, t.live.size() - 1));
        const int err = labyrinth_page_lookup_gpa(t.pool, it->second.page.gpa, &p);
        FUZZ_CHECK(err == LABYRINTH_OK && p.index == it->first &&
                       p.generation == it->second.page.generation && p.pool_id == id,
                   "lookup of a live page: %d", err);
      } else {
        const uint64_t gpa = in.ConsumeBool()
                                 ? t.window_gpa + in.ConsumeIntegralInRange<uint64_t>(0, 40) * 4096
                                 : in.ConsumeIntegral<uint64_t>();
        const int err = labyrinth_page_lookup_gpa(t.pool, gpa, &p);
        const bool in_window =
            gpa >= t.window_gpa && gpa % 4096 == 0 && (gpa - t.window_gpa) / 4096 < kMaxPages;
        const uint32_t index = static_cast<uint32_t>((gpa - t.window_gpa) / 4096);
        if (err == LABYRINTH_OK) {
          auto it = t.live.find(index);
          FUZZ_CHECK(in_window && it != t.live.end() && p.index == index &&
                         p.generation == it->second.page.generation && p.pool_id == id &&
                         p.gpa == it->second.page.gpa && p.host == it->second.page.host,
                     "lookup of %#llx found a page the model does not hold live",
                     (unsigned long long)gpa);
        } else if (err == LABYRINTH_E_DOUBLE_FREE) {  // a free page: not a violation
          FUZZ_CHECK(in_window && !t.live.contains(index), "lookup of a live page: free");
        } else {
          FUZZ_CHECK(err == LABYRINTH_E_OUT_OF_WINDOW && !t.live.contains(index), "lookup error %d",
                     err);
          t.expect_violation(err);
        }
      }
      t.check_counters();
      continue;
    }

    // A handle: live, mangled, dead, the other pool's, or random.
    labyrinth_page h{};
    uint32_t right_owner = 1;
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
      case 1:
        if (!t.live.empty()) {
          auto it = t.live.begin();
          std::advance(it, in.ConsumeIntegralInRange<size_t>(0, t.live.size() - 1));
          h = it->second.page;
          right_owner = it->second.owner;
        }
        break;
      case 2:
        if (!t.live.empty()) {
          auto it = t.live.begin();
          std::advance(it, in.ConsumeIntegralInRange<size_t>(0, t.live.size() - 1));
          h = it->second.page;
          right_owner = it->second.owner;
          switch (in.ConsumeIntegralInRange<int>(0, 5)) {
            case 0:
              h.generation ^= 1ull << in.ConsumeIntegralInRange<int>(0, 63);
              break;
            case 4:
              h.gpa ^= 1ull << in.ConsumeIntegralInRange<int>(0, 63);
              break;
            case 5:
              h.host = static_cast<char*>(h.host) + 4096 * in.ConsumeIntegralInRange<int>(-2, 2);
              break;
            case 1:
              h.index = in.ConsumeIntegral<uint32_t>() % 64;
              break;
            case 2:
              h.pool_id ^= 1u << in.ConsumeIntegralInRange<int>(0, 31);
              break;
            default:
              h.index ^= 1u << in.ConsumeIntegralInRange<int>(0, 31);
              break;
          }
        }
        break;
      case 3:
        if (!t.dead.empty()) h = t.dead[in.ConsumeIntegralInRange<size_t>(0, t.dead.size() - 1)];
        break;
      case 4: {
        const PoolUnderTest& o = pools[1 - which];
        if (!o.live.empty()) {
          h = o.live.begin()->second.page;
          right_owner = o.live.begin()->second.owner;
        }
        break;
      }
      default:
        h.index = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 40)
                                   : in.ConsumeIntegral<uint32_t>();
        h.generation = in.ConsumeIntegral<uint64_t>() >> in.ConsumeIntegralInRange<int>(0, 63);
        h.gpa = in.ConsumeBool() ? t.window_gpa + uint64_t{h.index} * 4096
                                 : in.ConsumeIntegral<uint64_t>();
        h.pool_id = in.ConsumeBool() ? id : in.ConsumeIntegral<uint32_t>();
        break;
    }
    const uint32_t owner = pick_owner(in, right_owner);
    const bool live = t.is_live(h, id);
    const bool owner_ok = live && owner != 0 && t.live[h.index].owner == owner;

    const int pre = t.precheck(h, id);
    FUZZ_CHECK(!live || pre == 0, "a live handle fails the handle checks (%d)", pre);
    auto describe = [&](const char* what, int err) {
      std::fprintf(stderr,
                   "%s of %s handle {index %u, generation %#llx, gpa %#llx, pool %#x} (owner %s) "
                   "returned %d\n",
                   what, live ? "a live" : "a dead", h.index, (unsigned long long)h.generation,
                   (unsigned long long)h.gpa, h.pool_id, owner_ok ? "right" : "wrong", err);
    };

    if (op == 5) {  // the other pool's cache: the C API frees through the cache's pool
      PoolUnderTest& o = pools[1 - which];
      if (h.pool_id == ids[1 - which]) continue;  // that pool's handle: an ordinary free
      const int err = labyrinth_page_free(o.cache, &h, owner);
      FUZZ_CHECK(err == LABYRINTH_E_FOREIGN_POOL, "free through another pool's cache: %d", err);
      o.expect_violation(err);
      o.check_counters();
    } else if (op == 1 || op == 2) {  // free (cached or not)
      const int err = op == 1 ? labyrinth_page_free(t.cache, &h, owner)
                              : labyrinth_page_free_uncached(t.pool, &h, owner);
      if ((err == LABYRINTH_OK) != owner_ok) describe("free", err);
      FUZZ_CHECK((err == LABYRINTH_OK) == owner_ok, "free: success disagrees with the model");
      if (err == LABYRINTH_OK) {
        ++t.frees;
        t.dead.push_back(h);
        t.live.erase(h.index);
      } else {
        if (!expected_rejection(err, pre)) describe("free", err);
        FUZZ_CHECK(expected_rejection(err, pre), "free rejected with an unexpected error %d", err);
        t.expect_violation(err);
      }
    } else if (op == 3) {  // transfer
      const uint32_t to = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint32_t>(1, 4);
      labyrinth_page moved = h;
      const int err = labyrinth_page_transfer(t.pool, &moved, owner, to);
      const bool ok = owner_ok && to != 0;
      if ((err == LABYRINTH_OK) != ok) describe("transfer", err);
      FUZZ_CHECK((err == LABYRINTH_OK) == ok, "transfer to %u: success disagrees with the model",
                 to);
      if (ok) {
        ++t.transfers;
        FUZZ_CHECK(std::memcmp(&moved, &h, sizeof h) == 0, "transfer changed the handle");
        t.live[h.index].owner = to;
      } else if (err == LABYRINTH_E_BAD_OWNER) {
        // to == 0 on a handle that passed the handle checks: not a violation.
        FUZZ_CHECK(to == 0 && pre == 0, "BAD_OWNER for a transfer to %u (precheck %d)", to, pre);
      } else {
        if (!expected_rejection(err, pre)) describe("transfer", err);
        FUZZ_CHECK(expected_rejection(err, pre), "transfer rejected with %d", err);
        t.expect_violation(err);
      }
    } else {  // transfer_gpa (op 6): by address, as a device takes a page back
      const uint64_t gpa = in.ConsumeBool()
                               ? h.gpa
                               : t.window_gpa + in.ConsumeIntegralInRange<uint64_t>(0, 40 * 4096);
      const uint32_t to = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint32_t>(1, 4);
      const bool in_window =
          gpa >= t.window_gpa && gpa % 4096 == 0 && (gpa - t.window_gpa) / 4096 < kMaxPages;
      const uint32_t index = static_cast<uint32_t>((gpa - t.window_gpa) / 4096);
      auto it = in_window ? t.live.find(index) : t.live.end();
      const bool held = it != t.live.end() && owner != 0 && it->second.owner == owner;
      labyrinth_page got{};
      const int err = labyrinth_page_transfer_gpa(t.pool, gpa, owner, to, &got);
      if (!in_window) {
        FUZZ_CHECK(err == LABYRINTH_E_OUT_OF_WINDOW, "transfer_gpa outside the window: %d", err);
        t.expect_violation(err);
      } else if (to == 0) {
        FUZZ_CHECK(err == LABYRINTH_E_BAD_OWNER, "transfer_gpa to 0: %d", err);
      } else if (held) {
        FUZZ_CHECK(err == LABYRINTH_OK && got.index == index &&
                       got.generation == it->second.page.generation && got.gpa == gpa &&
                       got.host == it->second.page.host && got.pool_id == id,
                   "transfer_gpa of a held page: %d", err);
        ++t.transfers;
        it->second.owner = to;
      } else {
        // A page not handed out: free, or in a chunk not backed now.
        const bool typed = it == t.live.end()
                               ? err == LABYRINTH_E_DOUBLE_FREE || err == LABYRINTH_E_OUT_OF_WINDOW
                               : err == LABYRINTH_E_NOT_OWNER;
        FUZZ_CHECK(typed, "transfer_gpa of page %u (%s): %d", index,
                   it == t.live.end() ? "not handed out" : "someone else's", err);
        t.expect_violation(err);
      }
    }
    t.check_counters();
    if (steps % 16 == 0) t.census(id);
  }
  for (int i = 0; i < 2; ++i) pools[i].census(ids[i]);
  for (auto& t : pools) {
    labyrinth_cache_detach(t.cache);
    labyrinth_pool_destroy(t.pool);
  }
  return 0;
}
