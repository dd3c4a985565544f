// bf16 on CPUs where oneDNN has no bf16 kernels: see dnnl_common.h.
#include "backend/cpu/dnnl_common.h"

#include <cstring>

namespace bb::cpu {

bool dnnl_has_bf16() {
  static const bool has = [] {
    using dnnl::memory;
    try {
      const memory::desc d({1, 1}, memory::data_type::bf16, memory::format_tag::ab);
      const memory::desc c({1, 1}, memory::data_type::f32, memory::format_tag::ab);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(d, d, c), dnnl_engine().engine);
      return true;
    } catch (const dnnl::error&) {
      return false;  // "could not create a primitive descriptor iterator": no bf16 kernel here
    }
  }();
  return has;
}

std::vector<float> widen_bf16(const void* bf16, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  const auto* src = static_cast<const uint16_t*>(bf16);
#pragma omp parallel for simd if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
  return out;
}

void narrow_to_bf16(const std::vector<float>& f32, void* bf16) {
  auto* dst = static_cast<uint16_t*>(bf16);
  const auto n = static_cast<int64_t>(f32.size());
#pragma omp parallel for simd if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(f32[i]);
}

}  // namespace bb::cpu
