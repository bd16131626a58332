// labyrinth_pool_create(vm_fd, ...): the C API's pool on a KVM VM fd (labyrinth_allocator_kvm).
#include <memory>

#include "allocator/c_api_internal.h"
#include "allocator/kvm/kvm_fd_sink.h"
#include "allocator/labyrinth_alloc.h"

extern "C" int labyrinth_pool_create(int vm_fd, const labyrinth_pool_config* cfg,
                                     labyrinth_pool** out) {
  if (cfg == nullptr) return LABYRINTH_E_BAD_CONFIG;
  return labyrinth::alloc::capi::create_pool(
      std::make_unique<labyrinth::alloc::KvmFdMemslotSink>(vm_fd, cfg->first_slot, cfg->max_chunks),
      cfg, out);
}
