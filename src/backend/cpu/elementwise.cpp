// Elementwise kernels: dtype casts, binary ops with a repeating right operand, scale-add,
// gradient accumulation and fill. Written once over element types (elem.h) and left to the
// compiler to vectorise; parallel over large ranges with OpenMP.
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "backend/cpu/quantized.h"

namespace bb {
using namespace cpu;

namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 15;

template <typename S, typename D>
void cast_loop(const S* __restrict s, D* __restrict d, int64_t n) {
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) store(d, i, load(s, i));
}

template <BinaryOp Op>
inline float apply(float a, float b) {
  if constexpr (Op == BinaryOp::Add) return a + b;
  else if constexpr (Op == BinaryOp::Sub) return a - b;
  else if constexpr (Op == BinaryOp::Mul) return a * b;
  else return a / b;
}

// out[r, j] = a[r, j] op b[j], rows of length `inner` = b's size.
template <BinaryOp Op, typename A, typename B, typename O>
void binary_loop(const A* __restrict a, const B* __restrict b, O* __restrict o, int64_t rows,
                 int64_t inner) {
  if (inner == 1) {
    float bv = load(b, 0);
    int64_t n = rows;
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) store(o, i, apply<Op>(load(a, i), bv));
    return;
  }
#pragma omp parallel for if (rows * inner > kParallelGrain) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const A* ar = a + r * inner;
    O* orow = o + r * inner;
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) store(orow, j, apply<Op>(load(ar, j), load(b, j)));
  }
}

template <typename A, typename B, typename O>
void binary_dispatch(BinaryOp op, const A* a, const B* b, O* o, int64_t rows, int64_t inner) {
  switch (op) {
    case BinaryOp::Add: binary_loop<BinaryOp::Add>(a, b, o, rows, inner); break;
    case BinaryOp::Sub: binary_loop<BinaryOp::Sub>(a, b, o, rows, inner); break;
    case BinaryOp::Mul: binary_loop<BinaryOp::Mul>(a, b, o, rows, inner); break;
    case BinaryOp::Div: binary_loop<BinaryOp::Div>(a, b, o, rows, inner); break;
  }
}
}  // namespace

void CpuBackend::cast(const Tensor& src, const Tensor& dst) {
  if (src.dtype() != dst.dtype() && is_block_quantized(src.dtype())) return dequantize(src, dst);
  if (src.dtype() != dst.dtype() && is_block_quantized(dst.dtype())) return quantize(src, dst);
  if (src.dtype() == dst.dtype()) {
    std::memcpy(dst.raw(), src.raw(), src.nbytes());
    return;
  }
  dispatch_float(src.dtype(), [&](auto* s) {
    dispatch_float(dst.dtype(), [&](auto* d) {
      using S = std::remove_pointer_t<decltype(s)>;
      using D = std::remove_pointer_t<decltype(d)>;
      cast_loop(src.data<S>(), dst.data<D>(), src.numel());
    });
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  int64_t inner = b.numel();
  int64_t rows = a.numel() / inner;
  dispatch_float(a.dtype(), [&](auto* at) {
    dispatch_float(b.dtype(), [&](auto* bt) {
      using A = std::remove_pointer_t<decltype(at)>;
      using B = std::remove_pointer_t<decltype(bt)>;
      if (inner == 1 && rows > 1) {
        // A scalar right operand: one flat loop.
        binary_dispatch(op, a.data<A>(), b.data<B>(), out.data<A>(), a.numel(), 1);
      } else {
        binary_dispatch(op, a.data<A>(), b.data<B>(), out.data<A>(), rows, inner);
      }
    });
  });
}

void CpuBackend::scale_add(const Tensor& a, float s, const Tensor& t, const Tensor& out) {
  int64_t n = a.numel();
  dispatch_float(a.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* __restrict x = a.data<T>();
    T* __restrict o = out.data<T>();
    if (t.defined()) {
      const T* __restrict y = t.data<T>();
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
      for (int64_t i = 0; i < n; ++i) store(o, i, load(x, i) * s + load(y, i));
    } else {
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
      for (int64_t i = 0; i < n; ++i) store(o, i, load(x, i) * s);
    }
  });
}

void CpuBackend::accumulate(const Tensor& dst, const Tensor& src, float alpha) {
  int64_t n = dst.numel();
  float* __restrict d = dst.data<float>();
  dispatch_float(src.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* __restrict s = src.data<T>();
    if (alpha == 1.0f) {
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] += load(s, i);
    } else {
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] += alpha * load(s, i);
    }
  });
}

void CpuBackend::fill(const Tensor& dst, float value) {
  int64_t n = dst.numel();
  if (value == 0.0f) {
    std::memset(dst.raw(), 0, dst.nbytes());
    return;
  }
  dispatch_float(dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* __restrict d = dst.data<T>();
#pragma omp parallel for simd if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) store(d, i, value);
  });
}

bool CpuBackend::has_nonfinite(const Tensor& t) {
  int64_t n = t.numel();
  int bad = 0;
  dispatch_float(t.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* __restrict s = t.data<T>();
#pragma omp parallel for reduction(| : bad) if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(load(s, i));
  });
  return bad != 0;
}

}  // namespace bb
