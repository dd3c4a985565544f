// CpuBackend::release_caches: our primitive maps, then oneDNN's own primitive cache, which
// keeps the implementations (and their generated code) of primitives already destroyed.
#include <dnnl.hpp>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/dnnl_common.h"

namespace bb {

void CpuBackend::release_caches() {
  cpu::clear_matmul_primitives();
  cpu::clear_conv_primitives();
  const int capacity = dnnl::get_primitive_cache_capacity();
  dnnl::set_primitive_cache_capacity(0);  // evicts every entry
  dnnl::set_primitive_cache_capacity(capacity);
}

}  // namespace bb
