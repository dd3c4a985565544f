// The registry: which backend runs a device's kernels. A new backend is one line here.
#include "backend/cpu/cpu_backend.h"
#include "backend/meta/meta_backend.h"

namespace bb {

Backend& backend_for(Device device) {
  static CpuBackend cpu;
  static MetaBackend meta;
  return device == Device::CPU ? static_cast<Backend&>(cpu) : static_cast<Backend&>(meta);
}

}  // namespace bb
