/*
 * allocator/labyrinth_alloc.h — C interface to the Labyrinth page pool.
 *
 * A plain C program (or C device model) can create a pool on a KVM VM fd (link
 * labyrinth_allocator_kvm) or a host-only pool that no guest sees (labyrinth_allocator
 * alone), attach a per-context cache, and take pages on the atomic exclusive path:
 *
 *   struct labyrinth_pool_config cfg;
 *   labyrinth_pool_config_init(&cfg);             // defaults: 2 MiB chunks at 4 GiB
 *   struct labyrinth_pool* pool;
 *   int err = labyrinth_pool_create(vm_fd, &cfg, &pool);   // or _create_host_only(&cfg, &pool)
 *   struct labyrinth_cache* rx = labyrinth_cache_attach(pool);
 *   struct labyrinth_page page;
 *   void* p = labyrinth_void_alloc_page_gfp_atomic_exclusive(rx, MY_OWNER, &page, &err);
 *   if (p == NULL) { ... drop: err == LABYRINTH_E_EXHAUSTED ... }
 *   labyrinth_page_transfer(pool, &page, MY_OWNER, GUEST_OWNER);
 *   labyrinth_page_free(rx, &page, GUEST_OWNER);
 *   labyrinth_cache_detach(rx);
 *   labyrinth_pool_destroy(pool);
 *
 * The atomic alloc, free and transfer make no system call and take no lock. "No fault":
 * every byte of data they touch — the pool, its metadata, the pages, and the pool and
 * cache handles of this API — is in mlock'ed, pre-faulted memory. Code is the caller's
 * part: the library's text, libc's (memset on the zero-on-free path) and the caller's
 * own stack can be evicted by the kernel like any file page, so a program that needs the
 * guarantee calls mlockall(MCL_CURRENT | MCL_FUTURE) before using the pool (the Labyrinth
 * VMM does; tests/allocator/atomic_path_test.cc evicts the text with MADV_PAGEOUT and
 * counts 0 faults under that lock). Errors are the LABYRINTH_E_* codes (0 = success).
 */
#ifndef LABYRINTH_ALLOCATOR_LABYRINTH_ALLOC_H
#define LABYRINTH_ALLOCATOR_LABYRINTH_ALLOC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes; the values match labyrinth::alloc::Error. */
enum labyrinth_error {
  LABYRINTH_OK = 0,
  LABYRINTH_E_EXHAUSTED = 1,
  LABYRINTH_E_RESERVE_ONLY = 2,
  LABYRINTH_E_TIMED_OUT = 3,
  LABYRINTH_E_DOUBLE_FREE = 4,
  LABYRINTH_E_NOT_OWNER = 5,
  LABYRINTH_E_STALE_HANDLE = 6,
  LABYRINTH_E_OUT_OF_WINDOW = 7,
  LABYRINTH_E_FOREIGN_POOL = 8,
  LABYRINTH_E_BAD_OWNER = 9,
  LABYRINTH_E_BAD_FLAGS = 10,
  LABYRINTH_E_BAD_CONFIG = 11,
  LABYRINTH_E_NO_CACHE_SLOT = 12,
  LABYRINTH_E_PIN_FAILED = 13,
  LABYRINTH_E_HUGETLB_UNAVAILABLE = 14,
  LABYRINTH_E_MAP_FAILED = 15,
  LABYRINTH_E_AT_MAXIMUM = 16,
  LABYRINTH_E_THREAD_FAILED = 17,
  LABYRINTH_E_BAD_HANDLE = 18, /* handle's gpa/host disagree with its index (forged, corrupted) */
  LABYRINTH_E_BAD_CACHE = 19,  /* cache of another pool, or detached */
};

enum labyrinth_backing {
  LABYRINTH_BACKING_4K = 0,
  LABYRINTH_BACKING_THP = 1,
  LABYRINTH_BACKING_HUGETLB = 2
};

struct labyrinth_pool_config {
  uint64_t window_gpa; /* 1 GiB aligned, >= 4 GiB */
  uint64_t window_size;
  uint64_t chunk_bytes; /* power of two, >= 4 KiB */
  uint32_t initial_chunks;
  uint32_t max_chunks;
  uint32_t min_pages, low_pages, high_pages;
  uint32_t backing;    /* enum labyrinth_backing */
  uint32_t first_slot; /* KVM memslots [first_slot, first_slot + max_chunks) are the pool's */
  uint32_t max_caches;
  uint32_t zero_on_free; /* 0: worker zeroes freed pages (default); 1: the freeing thread does */
};

struct labyrinth_page {
  uint64_t gpa;
  void* host;
  uint64_t generation; /* life of the page: 62 bits, never wraps in practice */
  uint32_t index;
  uint32_t pool_id;
};

struct labyrinth_pool_stats {
  uint64_t alloc_cache, alloc_depot, alloc_reserve, alloc_wait;
  uint64_t fail_exhausted, fail_reserve_only, fail_timed_out;
  uint64_t frees, transfers;
  uint64_t violation_double_free, violation_not_owner, violation_stale;
  uint64_t violation_out_of_window, violation_foreign_pool;
  uint64_t violation_bad_handle, violation_bad_cache;
  uint64_t pages_zeroed, chunks_added, chunks_removed;
  uint64_t chunks, total_pages, free_clean, free_dirty, in_use;
};

struct labyrinth_pool;
struct labyrinth_cache;

void labyrinth_pool_config_init(struct labyrinth_pool_config* cfg);
/* Creates a pool whose chunks are mapped into the VM behind vm_fd (not owned).
 * Defined in the labyrinth_allocator_kvm library. */
int labyrinth_pool_create(int vm_fd, const struct labyrinth_pool_config* cfg,
                          struct labyrinth_pool** out);
/* Creates a pool no guest sees (pinned, mapped nowhere; gpa is a pool-local address):
 * a host-only pool for a userspace device. cfg->first_slot is ignored. */
int labyrinth_pool_create_host_only(const struct labyrinth_pool_config* cfg,
                                    struct labyrinth_pool** out);
void labyrinth_pool_destroy(struct labyrinth_pool* pool);
struct labyrinth_cache* labyrinth_cache_attach(struct labyrinth_pool* pool);
void labyrinth_cache_detach(struct labyrinth_cache* cache);

/* The atomic exclusive path: a zeroed page owned by `owner`, or NULL with *err set. */
void* labyrinth_void_alloc_page_gfp_atomic_exclusive(struct labyrinth_cache* cache, uint32_t owner,
                                                     struct labyrinth_page* page, int* err);
/* Setup path: may wait for the pool to grow; never takes the atomic reserve. */
void* labyrinth_alloc_page_wait(struct labyrinth_pool* pool, uint32_t owner,
                                struct labyrinth_page* page, int* err);
int labyrinth_page_free(struct labyrinth_cache* cache, const struct labyrinth_page* page,
                        uint32_t owner);
int labyrinth_page_free_uncached(struct labyrinth_pool* pool, const struct labyrinth_page* page,
                                 uint32_t owner);
int labyrinth_page_transfer(struct labyrinth_pool* pool, struct labyrinth_page* page, uint32_t from,
                            uint32_t to);
/* Current handle of the ALLOCATED page at gpa (LABYRINTH_E_DOUBLE_FREE if it is free). */
int labyrinth_page_lookup_gpa(struct labyrinth_pool* pool, uint64_t gpa,
                              struct labyrinth_page* page);
/* Atomically moves the page at gpa from `from` to `to` (one CAS that checks the owner):
 * how a device takes back a page an untrusted party returns by address. *page gets the
 * handle (may be NULL). */
int labyrinth_page_transfer_gpa(struct labyrinth_pool* pool, uint64_t gpa, uint32_t from,
                                uint32_t to, struct labyrinth_page* page);
void labyrinth_pool_get_stats(const struct labyrinth_pool* pool, struct labyrinth_pool_stats* out);
const char* labyrinth_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* LABYRINTH_ALLOCATOR_LABYRINTH_ALLOC_H */
