// allocator/c_api_internal.h — shared by the C API's translation units (not installed).
//
// The core C API (c_api.cc) creates host-only pools; allocator/kvm/c_api_kvm.cc creates
// pools on a KVM VM fd. Both hand their sink to create_pool, which the handle then owns.
#pragma once

#include <memory>

#include "allocator/labyrinth_alloc.h"
#include "allocator/memslot_sink.h"

namespace labyrinth::alloc::capi {

// Validates *cfg, creates the pool on sink (moved into the new handle), sets *out.
// Returns LABYRINTH_OK or a LABYRINTH_E_* code.
int create_pool(std::unique_ptr<MemslotSink> sink, const labyrinth_pool_config* cfg,
                labyrinth_pool** out);

}  // namespace labyrinth::alloc::capi
