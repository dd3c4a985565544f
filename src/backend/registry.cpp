// The registry: which backend runs a device's kernels. A new backend is one line here.
#include "backend/cpu/cpu_backend.h"
#include "backend/meta/meta_backend.h"
#include "backend/profile.h"
#include "backend/profiling_backend.h"

namespace bb {

Backend& backend_for(Device device) {
  static CpuBackend cpu;
  static MetaBackend meta;
  if (device != Device::CPU) return meta;
  // While the per-op profile is on, CPU kernels run through the profiler that times them.
  return profiling() ? profiling_backend(cpu) : static_cast<Backend&>(cpu);
}

}  // namespace bb
