/* A plain C program using the pool through allocator/labyrinth_alloc.h.
 * Runs everything on a host-only pool (no KVM needed), then the same on a pool on a KVM
 * VM fd where /dev/kvm exists. Exit status 0 = pass, else the failing check's line. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "allocator/labyrinth_alloc.h"

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "c_api_test: line %d: %s\n", __LINE__, #cond); \
      return __LINE__ % 200 + 1;                                     \
    }                                                                \
  } while (0)

/* vm < 0: host-only pool. */
static int exercise(int vm) {
  struct labyrinth_pool_config cfg;
  labyrinth_pool_config_init(&cfg);
  cfg.max_chunks = 2;
  struct labyrinth_pool* pool = NULL;
  struct labyrinth_pool_config bad = cfg;
  bad.window_gpa = 12345;
  if (vm >= 0) {
    CHECK(labyrinth_pool_create(vm, &bad, &pool) == LABYRINTH_E_BAD_CONFIG);
    CHECK(labyrinth_pool_create(vm, &cfg, &pool) == LABYRINTH_OK);
  } else {
    CHECK(labyrinth_pool_create_host_only(&bad, &pool) == LABYRINTH_E_BAD_CONFIG);
    CHECK(labyrinth_pool_create_host_only(&cfg, &pool) == LABYRINTH_OK);
  }
  struct labyrinth_cache* cache = labyrinth_cache_attach(pool);
  CHECK(cache != NULL);

  struct labyrinth_page page;
  int err = -1;
  unsigned char* p = labyrinth_void_alloc_page_gfp_atomic_exclusive(cache, 1, &page, &err);
  CHECK(p != NULL && err == LABYRINTH_OK);
  CHECK(page.gpa >= (4ull << 30));
  for (int i = 0; i < 4096; ++i) CHECK(p[i] == 0);
  memset(p, 0xEE, 4096);

  CHECK(labyrinth_page_transfer(pool, &page, 1, 2) == LABYRINTH_OK);
  CHECK(labyrinth_page_free(cache, &page, 1) == LABYRINTH_E_NOT_OWNER);
  struct labyrinth_page found;
  CHECK(labyrinth_page_lookup_gpa(pool, page.gpa, &found) == LABYRINTH_OK);
  CHECK(found.index == page.index && found.generation == page.generation);
  CHECK(labyrinth_page_lookup_gpa(pool, 4096, &found) == LABYRINTH_E_OUT_OF_WINDOW);
  /* Return by address: owner 2 holds it now; owner 1 cannot take it back. */
  CHECK(labyrinth_page_transfer_gpa(pool, page.gpa, 1, 3, NULL) == LABYRINTH_E_NOT_OWNER);
  CHECK(labyrinth_page_transfer_gpa(pool, page.gpa, 2, 1, &found) == LABYRINTH_OK);
  CHECK(found.index == page.index && found.generation == page.generation);
  CHECK(labyrinth_page_transfer(pool, &page, 1, 2) == LABYRINTH_OK);
  struct labyrinth_page forged = page;
  forged.gpa += 4096;
  CHECK(labyrinth_page_free(cache, &forged, 2) == LABYRINTH_E_BAD_HANDLE);
  CHECK(labyrinth_page_free(cache, &page, 2) == LABYRINTH_OK);
  CHECK(labyrinth_page_free(cache, &page, 2) == LABYRINTH_E_DOUBLE_FREE);
  CHECK(labyrinth_page_lookup_gpa(pool, page.gpa, &found) == LABYRINTH_E_DOUBLE_FREE);
  CHECK(labyrinth_void_alloc_page_gfp_atomic_exclusive(cache, 0, &page, &err) == NULL);
  CHECK(err == LABYRINTH_E_BAD_OWNER);

  struct labyrinth_page batch[100];
  CHECK(labyrinth_alloc_pages_gfp_atomic_exclusive(cache, 4, batch, 100, &err) == 100);
  CHECK(err == LABYRINTH_OK);
  for (int i = 0; i < 100; ++i) {
    unsigned char* h = (unsigned char*)batch[i].host;
    CHECK(h[0] == 0 && h[4095] == 0);
    CHECK(i == 0 || batch[i].gpa != batch[i - 1].gpa);
  }
  struct labyrinth_page last = batch[99];
  batch[99] = batch[0]; /* the same page twice: the second is refused, the rest freed */
  CHECK(labyrinth_pages_free(cache, batch, 100, 4, &err) == 99);
  CHECK(err == LABYRINTH_E_DOUBLE_FREE);
  CHECK(labyrinth_page_free(cache, &last, 4) == LABYRINTH_OK);
  CHECK(labyrinth_alloc_pages_gfp_atomic_exclusive(cache, 0, batch, 4, &err) == 0);
  CHECK(err == LABYRINTH_E_BAD_OWNER);

  void* w = labyrinth_alloc_page_wait(pool, 3, &page, &err);
  CHECK(w != NULL && err == LABYRINTH_OK);
  CHECK(labyrinth_page_free_uncached(pool, &page, 3) == LABYRINTH_OK);

  struct labyrinth_pool_stats st;
  labyrinth_pool_get_stats(pool, &st);
  CHECK(st.frees == 2 + 100 && st.transfers == 3);
  CHECK(st.violation_not_owner == 2 && st.violation_double_free == 2);
  CHECK(st.violation_out_of_window == 1 && st.violation_bad_handle == 1);
  CHECK(st.chunks == 1 && st.total_pages == 512);
  CHECK(strstr(labyrinth_strerror(LABYRINTH_E_EXHAUSTED), "no free page") != NULL);
  CHECK(strstr(labyrinth_strerror(LABYRINTH_E_BAD_CACHE), "cache") != NULL);

  labyrinth_cache_detach(cache);
  labyrinth_pool_destroy(pool);
  return 0;
}

int main(void) {
  int rc = exercise(-1);
  if (rc != 0) return rc;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) {
    printf(
        "c_api_test: FAIL: host-only pool ok, but no working /dev/kvm for the KVM pool "
        "(label allocator-kvm: run it where KVM works or in the test VM, scripts/vm.sh)\n");
    if (kvm >= 0) close(kvm);
    return 1;
  }
  rc = exercise(vm);
  close(vm);
  close(kvm);
  if (rc != 0) return rc;
  printf("c_api_test: ok (host-only and KVM pools)\n");
  return 0;
}
