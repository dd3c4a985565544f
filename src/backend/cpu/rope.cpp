// Rotary position embedding (Llama's rotate_half pairing: element i with i + head_dim/2).
// The cos/sin table is built once per call in double precision; the rotation itself is f32
// and may run in place (y may alias x).
#include <cmath>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {
namespace {

using cpu::load;
using cpu::store;

template <typename T>
void rope_rows(const T* x, T* y, int64_t batch, int64_t seq, int64_t heads, int64_t d,
               const int64_t* positions, const float* cos_t, const float* sin_t) {
  const int64_t half = d / 2;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < seq; ++t) {
      const int64_t at = positions ? positions[b * seq + t] : t;
      const float* c = cos_t + at * half;
      const float* s = sin_t + at * half;
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t row = ((b * seq + t) * heads + h) * d;
        // Both halves are read before either is written, so in-place works.
#pragma omp simd
        for (int64_t i = 0; i < half; ++i) {
          const float lo = load(x, row + i), hi = load(x, row + i + half);
          store(y, row + i, lo * c[i] - hi * s[i]);
          store(y, row + i + half, hi * c[i] + lo * s[i]);
        }
      }
    }
}

}  // namespace

void CpuBackend::rope(const Tensor& x, float theta, bool inverse, const Tensor& positions, const Tensor& y) {
  if (x.ndim() != 4 || x.dim(3) % 2 != 0 || y.shape() != x.shape() || y.dtype() != x.dtype() ||
      !is_float(x.dtype()))
    throw ShapeError("rope wants x (batch, seq, heads, even head_dim) and y alike, got x " +
                     x.desc() + " and y " + y.desc());
  const int64_t batch = x.dim(0), seq = x.dim(1), heads = x.dim(2), d = x.dim(3), half = d / 2;
  const int64_t* pos = nullptr;
  if (positions.defined()) {
    if (positions.dtype() != DType::I64 || positions.shape() != Shape{batch, seq})
      throw ShapeError("rope wants positions (batch, seq) i64 for x " + x.desc() + ", got " + positions.desc());
    pos = positions.data<int64_t>();
    for (int64_t i = 0; i < batch * seq; ++i)  // the table holds positions 0 .. seq-1
      if (pos[i] < 0 || pos[i] >= seq)
        throw ShapeError(fmt::format("rope: position {} of row {} is outside 0..{}", pos[i], i / seq, seq - 1));
  }
  if (x.numel() == 0) return;
  // Position t, pair i turns by t * theta^(-2i/d); the inverse turns back (sin negated).
  std::vector<float> cos_t(seq * half), sin_t(seq * half);
  const double sign = inverse ? -1.0 : 1.0;
  for (int64_t i = 0; i < half; ++i) {
    const double freq = std::pow(double(theta), -2.0 * double(i) / double(d));
    for (int64_t t = 0; t < seq; ++t) {
      const double angle = double(t) * freq;
      cos_t[t * half + i] = float(std::cos(angle));
      sin_t[t * half + i] = float(sign * std::sin(angle));
    }
  }
  cpu::dispatch_float(x.dtype(), [&](auto tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rope_rows<T>(x.data<T>(), y.data<T>(), batch, seq, heads, d, pos, cos_t.data(), sin_t.data());
  });
}

}  // namespace bb
