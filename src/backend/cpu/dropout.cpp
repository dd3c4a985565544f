// Dropout: y = x * keep / (1 - p), with element i's keep drawn from the counter-based stream
// of (key.seed, key.offset) at index key.index0 + i (or by sample rows: RngKey), so replays and the backward pass (this same kernel
// applied to dy with the same key) see the same mask whatever the thread count.
#include <omp.h>

#include <cstring>

#include "backend/cpu/counter_rng.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {

namespace {

template <typename T>
void dropout_kernel(const T* __restrict x, T* __restrict y, int64_t n, uint64_t stream, uint64_t index0,
                    uint64_t drop_below, float scale) {
  // Element i is dropped when its uint32 draw is < drop_below = round(p * 2^32): exactly
  // probability p up to 2^-32. The compare is in 64 bits so p = 1 drops everything.
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = cpu::counter_random_at(stream, index0 + static_cast<uint64_t>(i));
    float v = cpu::load(x, i) * scale;
    cpu::store(y, i, u >= drop_below ? v : 0.0f);
  }
}

// Sample rows: row r starts its draws at ((index0 + r) << 40).
template <typename T>
void dropout_rows(const T* x, T* y, int64_t n, int64_t row, uint64_t stream, uint64_t index0, uint64_t drop_below,
                  float scale) {
  const int64_t rows = n / row;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t r = 0; r < rows; ++r)
    dropout_kernel<T>(x + r * row, y + r * row, row, stream, (index0 + static_cast<uint64_t>(r)) << 40, drop_below,
                      scale);
}

}  // namespace

void CpuBackend::dropout(const Tensor& x, float p, RngKey key, const Tensor& y) {
  if (x.dtype() != y.dtype() || !is_float(x.dtype()))
    throw ShapeError("dropout wants x and y of the same float dtype, got " +
                     std::string(dtype_name(x.dtype())) + " and " +
                     std::string(dtype_name(y.dtype())));
  if (!(p >= 0.0f && p <= 1.0f))
    throw ShapeError("dropout probability must lie in [0, 1], got " + std::to_string(p));
  const int64_t n = x.numel();
  if (n == 0) return;
  if (p == 0.0f) {
    if (x.raw() != y.raw()) std::memcpy(y.raw(), x.raw(), x.nbytes());
    return;
  }
  const uint64_t drop_below =
      static_cast<uint64_t>(static_cast<double>(p) * 4294967296.0 + 0.5);
  // p = 1 keeps nothing; the scale is then never used (0 * inf would be NaN).
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  const uint64_t stream = cpu::counter_stream(key.seed, key.offset);
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    if (key.row > 0 && n % static_cast<int64_t>(key.row) == 0)
      dropout_rows<T>(x.data<T>(), y.data<T>(), n, static_cast<int64_t>(key.row), stream, key.index0, drop_below, scale);
    else
      dropout_kernel<T>(x.data<T>(), y.data<T>(), n, stream, key.index0, drop_below, scale);
  });
}

}  // namespace bb
