// tests/fuzz/c_api_fuzz.cc — random handles and owners through the C API
// (allocator/labyrinth_alloc.h) against two real pools on one real KVM VM.
//
// A model beside the pools knows every page handed out (index, generation, pool id,
// owner). The input picks operations (atomic alloc, cached/uncached free, transfer,
// lookup) and handles: exact live ones, live ones with a field changed (generation,
// index, pool id), freed ones, the other pool's, or random bytes; owners right, wrong
// or 0. Invariants: an operation succeeds iff the model says the handle is live and
// the owner right; a rejected one returns a violation code (or BAD_OWNER for owner 0)
// and leaves the page as it was; every violation is counted exactly once (the
// violation_* counters equal the model's tally, per kind); frees and transfers are
// counted; a page is never handed out twice at once, arrives zeroed, and a handle from
// lookup_gpa of a live page is the live handle.
//
// Needs /dev/kvm (the C API maps chunks with KVM_SET_USER_MEMORY_REGION on a VM fd).
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

int g_vm_fd = -1;

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
      default:
        break;
    }
  }
  bool is_live(const labyrinth_page& p, uint32_t pool_id) const {
    auto it = live.find(p.index);
    return p.pool_id == pool_id && it != live.end() && it->second.page.generation == p.generation;
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
                   s.violation_foreign_pool == v_foreign,
               "violations df/no/st/ow/fp %llu/%llu/%llu/%llu/%llu, model %llu/%llu/%llu/%llu/%llu",
               (unsigned long long)s.violation_double_free,
               (unsigned long long)s.violation_not_owner, (unsigned long long)s.violation_stale,
               (unsigned long long)s.violation_out_of_window,
               (unsigned long long)s.violation_foreign_pool, (unsigned long long)v_double,
               (unsigned long long)v_owner, (unsigned long long)v_stale,
               (unsigned long long)v_window, (unsigned long long)v_foreign);
  }
};

bool is_violation(int err) {
  return err == LABYRINTH_E_DOUBLE_FREE || err == LABYRINTH_E_NOT_OWNER ||
         err == LABYRINTH_E_STALE_HANDLE || err == LABYRINTH_E_OUT_OF_WINDOW ||
         err == LABYRINTH_E_FOREIGN_POOL;
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

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm >= 0) g_vm_fd = ioctl(kvm, KVM_CREATE_VM, 0);
  if (g_vm_fd < 0) {
    std::fprintf(stderr, "c_api_fuzz: needs /dev/kvm and KVM_CREATE_VM\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::array<PoolUnderTest, 2> pools;
  std::array<uint32_t, 2> ids{};
  const bool zero_on_free = in.ConsumeBool();
  for (int i = 0; i < 2; ++i) {
    labyrinth_pool_config cfg;
    labyrinth_pool_config_init(&cfg);
    cfg.window_gpa = (4ull + i) << 30;
    cfg.chunk_bytes = 64 << 10;
    cfg.initial_chunks = 1;
    cfg.max_chunks = 2;
    cfg.min_pages = 2;
    cfg.low_pages = 4;
    cfg.high_pages = 8;
    cfg.first_slot = 16 + 8 * i;
    cfg.zero_on_free = zero_on_free;
    const int err = labyrinth_pool_create(g_vm_fd, &cfg, &pools[i].pool);
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
    const int op = in.ConsumeIntegralInRange<int>(0, 4);

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
        const uint64_t gpa = in.ConsumeIntegral<uint64_t>();
        const int err = labyrinth_page_lookup_gpa(t.pool, gpa, &p);
        if (err != LABYRINTH_OK) {
          FUZZ_CHECK(err == LABYRINTH_E_OUT_OF_WINDOW, "lookup error %d", err);
          t.expect_violation(err);
        } else {
          FUZZ_CHECK(p.gpa == gpa && p.pool_id == id, "lookup returned another address");
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
          switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0:
              h.generation ^= 1u << in.ConsumeIntegralInRange<int>(0, 31);
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
        h.index = in.ConsumeIntegral<uint32_t>();
        h.generation = in.ConsumeIntegral<uint32_t>();
        h.pool_id = in.ConsumeBool() ? id : in.ConsumeIntegral<uint32_t>();
        break;
    }
    const uint32_t owner = pick_owner(in, right_owner);
    const bool live = t.is_live(h, id);
    const bool owner_ok = live && owner != 0 && t.live[h.index].owner == owner;

    if (op == 1 || op == 2) {  // free (cached or not)
      const int err = op == 1 ? labyrinth_page_free(t.cache, &h, owner)
                              : labyrinth_page_free_uncached(t.pool, &h, owner);
      FUZZ_CHECK((err == LABYRINTH_OK) == owner_ok,
                 "free of %s handle {index %u, generation %#x, pool %#x} (owner %s; live "
                 "generation %#x) returned %d",
                 live ? "a live" : "a dead", h.index, h.generation, h.pool_id,
                 owner_ok ? "right" : "wrong",
                 t.live.contains(h.index) ? t.live[h.index].page.generation : 0u, err);
      if (err == LABYRINTH_OK) {
        ++t.frees;
        t.dead.push_back(h);
        t.live.erase(h.index);
      } else {
        FUZZ_CHECK(is_violation(err), "free rejected with a non-violation %d", err);
        t.expect_violation(err);
      }
    } else {  // transfer
      const uint32_t to = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<uint32_t>(1, 4);
      labyrinth_page moved = h;
      const int err = labyrinth_page_transfer(t.pool, &moved, owner, to);
      const bool ok = owner_ok && to != 0;
      FUZZ_CHECK((err == LABYRINTH_OK) == ok,
                 "transfer of %s handle {index %u, generation %#x, pool %#x} (owner %s, to %u; "
                 "live generation %#x) returned %d",
                 live ? "a live" : "a dead", h.index, h.generation, h.pool_id,
                 owner_ok ? "right" : "wrong", to,
                 t.live.contains(h.index) ? t.live[h.index].page.generation : 0u, err);
      if (ok) {
        ++t.transfers;
        FUZZ_CHECK(moved.index == h.index && moved.generation == h.generation, "transfer handle");
        t.live[h.index].owner = to;
      } else if (err == LABYRINTH_E_BAD_OWNER) {
        // to == 0 on a handle that passed the pool id and index checks: not a violation.
        FUZZ_CHECK(to == 0, "BAD_OWNER for a transfer to %u", to);
      } else {
        FUZZ_CHECK(is_violation(err), "transfer rejected with %d", err);
        t.expect_violation(err);
      }
    }
    t.check_counters();
  }
  for (auto& t : pools) {
    t.check_counters();
    labyrinth_cache_detach(t.cache);
    labyrinth_pool_destroy(t.pool);
  }
  return 0;
}
