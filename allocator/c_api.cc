// The C entry points of allocator/labyrinth_alloc.h, over PagePool. The KVM entry point
// labyrinth_pool_create(vm_fd, ...) lives in allocator/kvm/c_api_kvm.cc (its own target).
#include "allocator/labyrinth_alloc.h"

#include <memory>
#include <new>

#include "allocator/c_api_internal.h"
#include "allocator/page_pool.h"
#include "allocator/pinned_region.h"

using labyrinth::alloc::Error;
using labyrinth::alloc::Page;
using labyrinth::alloc::PageCache;
using labyrinth::alloc::PagePool;

// The handles the atomic calls dereference live in pinned memory (mmap + mlock), like the
// pool itself: a heap page could be swapped out and fault on the next atomic call.
struct labyrinth_pool {
  std::unique_ptr<labyrinth::alloc::MemslotSink> sink;
  std::unique_ptr<PagePool> pool;
  static void* operator new(std::size_t bytes, const std::nothrow_t& /*tag*/) noexcept {
    return labyrinth::alloc::pinned_alloc(bytes);
  }
  static void operator delete(void* p, std::size_t bytes) noexcept {
    labyrinth::alloc::pinned_free(p, bytes);
  }
};

struct labyrinth_cache {
  labyrinth_pool* owner;
  PageCache* cache;
  static void* operator new(std::size_t bytes, const std::nothrow_t& /*tag*/) noexcept {
    return labyrinth::alloc::pinned_alloc(bytes);
  }
  static void operator delete(void* p, std::size_t bytes) noexcept {
    labyrinth::alloc::pinned_free(p, bytes);
  }
};

static_assert(static_cast<int>(Error::exhausted) == LABYRINTH_E_EXHAUSTED);
static_assert(static_cast<int>(Error::double_free) == LABYRINTH_E_DOUBLE_FREE);
static_assert(static_cast<int>(Error::out_of_window) == LABYRINTH_E_OUT_OF_WINDOW);
static_assert(static_cast<int>(Error::bad_config) == LABYRINTH_E_BAD_CONFIG);
static_assert(static_cast<int>(Error::thread_failed) == LABYRINTH_E_THREAD_FAILED);
static_assert(static_cast<int>(Error::bad_handle) == LABYRINTH_E_BAD_HANDLE);
static_assert(static_cast<int>(Error::bad_cache) == LABYRINTH_E_BAD_CACHE);

namespace {
int code(Error e) {
  return static_cast<int>(e);
}

void to_c(const Page& p, labyrinth_page* out) {
  out->gpa = p.gpa;
  out->host = p.host;
  out->generation = p.generation;
  out->index = p.index;
  out->pool_id = p.pool_id;
}

// The C shape of an allocation result: the page's host address (NULL on failure),
// *page filled, *err set (err may be NULL).
void* hand_to_c(const std::expected<Page, Error>& p, labyrinth_page* page, int* err) {
  if (err != nullptr) *err = p ? LABYRINTH_OK : code(p.error());
  if (!p) return nullptr;
  to_c(*p, page);
  return p->host;
}

Page from_c(const labyrinth_page* p) {
  return Page{p->gpa, static_cast<std::byte*>(p->host), p->generation, p->index, p->pool_id};
}
}  // namespace

namespace labyrinth::alloc::capi {

int create_pool(std::unique_ptr<MemslotSink> sink, const labyrinth_pool_config* c,
                labyrinth_pool** out) {
  if (c == nullptr || out == nullptr || c->backing > LABYRINTH_BACKING_HUGETLB) {
    return LABYRINTH_E_BAD_CONFIG;
  }
  PoolConfig cfg;
  cfg.window_gpa = c->window_gpa;
  cfg.window_size = c->window_size;
  cfg.chunk_bytes = c->chunk_bytes;
  cfg.initial_chunks = c->initial_chunks;
  cfg.max_chunks = c->max_chunks;
  cfg.min_pages = c->min_pages;
  cfg.low_pages = c->low_pages;
  cfg.high_pages = c->high_pages;
  cfg.backing = static_cast<Backing>(c->backing);
  cfg.max_caches = c->max_caches;
  cfg.zero_policy = c->zero_on_free ? ZeroPolicy::on_free : ZeroPolicy::worker;
  auto* handle = new (std::nothrow) labyrinth_pool;
  if (handle == nullptr) return LABYRINTH_E_PIN_FAILED;
  handle->sink = std::move(sink);
  auto pool = PagePool::create(cfg, *handle->sink);
  if (!pool) {
    delete handle;
    return code(pool.error());
  }
  handle->pool = std::move(*pool);
  *out = handle;
  return LABYRINTH_OK;
}

}  // namespace labyrinth::alloc::capi

extern "C" {

void labyrinth_pool_config_init(labyrinth_pool_config* cfg) {
  const labyrinth::alloc::PoolConfig d;
  *cfg = labyrinth_pool_config{};
  cfg->window_gpa = 4ull << 30;
  cfg->window_size = 1ull << 30;
  cfg->chunk_bytes = d.chunk_bytes;
  cfg->initial_chunks = d.initial_chunks;
  cfg->max_chunks = d.max_chunks;
  cfg->min_pages = d.min_pages;
  cfg->low_pages = d.low_pages;
  cfg->high_pages = d.high_pages;
  cfg->backing = LABYRINTH_BACKING_4K;
  cfg->first_slot = 16;
  cfg->max_caches = d.max_caches;
  cfg->zero_on_free = 0;
}

int labyrinth_pool_create_host_only(const labyrinth_pool_config* cfg, labyrinth_pool** out) {
  return labyrinth::alloc::capi::create_pool(std::make_unique<labyrinth::alloc::HostOnlySink>(),
                                             cfg, out);
}

void labyrinth_pool_destroy(labyrinth_pool* pool) {
  if (pool == nullptr) return;
  pool->pool.reset();  // before the sink it maps through
  delete pool;
}

labyrinth_cache* labyrinth_cache_attach(labyrinth_pool* pool) {
  auto cache = pool->pool->attach_cache();
  if (!cache) return nullptr;
  auto* handle = new (std::nothrow) labyrinth_cache{pool, *cache};
  if (handle == nullptr) pool->pool->detach_cache(*cache);
  return handle;
}

void labyrinth_cache_detach(labyrinth_cache* cache) {
  if (cache == nullptr) return;
  cache->owner->pool->detach_cache(cache->cache);
  delete cache;
}

void* labyrinth_void_alloc_page_gfp_atomic_exclusive(labyrinth_cache* cache, uint32_t owner,
                                                     labyrinth_page* page, int* err) {
  return hand_to_c(
      cache->owner->pool->alloc_page(labyrinth::alloc::kGfpAtomicExclusive, owner, cache->cache),
      page, err);
}

void* labyrinth_alloc_page_wait(labyrinth_pool* pool, uint32_t owner, labyrinth_page* page,
                                int* err) {
  return hand_to_c(pool->pool->alloc_page(labyrinth::alloc::kGfpExclusive, owner, nullptr), page,
                   err);
}

int labyrinth_page_free(labyrinth_cache* cache, const labyrinth_page* page, uint32_t owner) {
  auto r = cache->owner->pool->free_page(from_c(page), owner, cache->cache);
  return r ? LABYRINTH_OK : code(r.error());
}

int labyrinth_page_free_uncached(labyrinth_pool* pool, const labyrinth_page* page, uint32_t owner) {
  auto r = pool->pool->free_page(from_c(page), owner, nullptr);
  return r ? LABYRINTH_OK : code(r.error());
}

int labyrinth_page_transfer(labyrinth_pool* pool, labyrinth_page* page, uint32_t from,
                            uint32_t to) {
  auto r = pool->pool->transfer(from_c(page), from, to);
  if (!r) return code(r.error());
  to_c(*r, page);
  return LABYRINTH_OK;
}

int labyrinth_page_transfer_gpa(labyrinth_pool* pool, uint64_t gpa, uint32_t from, uint32_t to,
                                labyrinth_page* page) {
  auto r = pool->pool->transfer_gpa(gpa, from, to);
  if (!r) return code(r.error());
  if (page != nullptr) to_c(*r, page);
  return LABYRINTH_OK;
}

int labyrinth_page_lookup_gpa(labyrinth_pool* pool, uint64_t gpa, labyrinth_page* page) {
  auto r = pool->pool->lookup_gpa(gpa);
  if (!r) return code(r.error());
  to_c(*r, page);
  return LABYRINTH_OK;
}

void labyrinth_pool_get_stats(const labyrinth_pool* pool, labyrinth_pool_stats* out) {
  const auto s = pool->pool->stats();
  *out = labyrinth_pool_stats{s.alloc_cache,
                              s.alloc_depot,
                              s.alloc_reserve,
                              s.alloc_wait,
                              s.fail_exhausted,
                              s.fail_reserve_only,
                              s.fail_timed_out,
                              s.frees,
                              s.transfers,
                              s.violation_double_free,
                              s.violation_not_owner,
                              s.violation_stale,
                              s.violation_out_of_window,
                              s.violation_foreign_pool,
                              s.violation_bad_handle,
                              s.violation_bad_cache,
                              s.pages_zeroed,
                              s.chunks_added,
                              s.chunks_removed,
                              s.chunks,
                              s.total_pages,
                              s.free_clean,
                              s.free_dirty,
                              s.in_use};
}

const char* labyrinth_strerror(int err) {
  if (err == LABYRINTH_OK) return "success";
  if (err < 1 || err > LABYRINTH_E_BAD_CACHE) return "unknown error";
  // to_string returns views of string literals: NUL-terminated.
  return labyrinth::alloc::to_string(static_cast<Error>(err)).data();
}

}  // extern "C"
