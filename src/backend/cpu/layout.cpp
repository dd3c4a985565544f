// Kernels that move or reduce data without arithmetic of their own: sums over a dim,
// sum of squares, permute and the block copy behind concat, split and slice.
#include <cstring>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"

namespace bb {
using namespace cpu;

void CpuBackend::reduce_sum(const Tensor& src, const Tensor& out, int64_t outer, int64_t dim,
                            int64_t inner) {
  dispatch_float(src.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* s = src.data<T>();
    dispatch_float(out.dtype(), [&](auto* otag) {
      using O = std::remove_pointer_t<decltype(otag)>;
      O* o = out.data<O>();
      if (inner == 1) {
#pragma omp parallel for if (outer * dim > (1 << 15)) schedule(static)
        for (int64_t r = 0; r < outer; ++r) {
          float acc = 0;
          const T* row = s + r * dim;
#pragma omp simd reduction(+ : acc)
          for (int64_t j = 0; j < dim; ++j) acc += load(row, j);
          store(o, r, acc);
        }
        return;
      }
      // Sum rows of `inner` elements: parallel over column blocks so each thread owns its
      // outputs and the order of additions is fixed (deterministic).
      constexpr int64_t kCols = 256;
      int64_t col_blocks = (inner + kCols - 1) / kCols;
#pragma omp parallel for collapse(2) if (outer * dim * inner > (1 << 15)) schedule(static)
      for (int64_t r = 0; r < outer; ++r) {
        for (int64_t cb = 0; cb < col_blocks; ++cb) {
          int64_t c0 = cb * kCols, c1 = std::min(inner, c0 + kCols);
          float acc[kCols] = {};
          for (int64_t j = 0; j < dim; ++j) {
            const T* row = s + (r * dim + j) * inner;
#pragma omp simd
            for (int64_t c = c0; c < c1; ++c) acc[c - c0] += load(row, c);
          }
          for (int64_t c = c0; c < c1; ++c) store(o, r * inner + c, acc[c - c0]);
        }
      }
    });
  });
}

void CpuBackend::sum_squares(const Tensor& src, const Tensor& out) {
  int64_t n = src.numel();
  double total = 0;
  dispatch_float(src.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* s = src.data<T>();
    // Fixed blocks summed in order keep the result independent of thread timing.
    constexpr int64_t kBlock = 1 << 14;
    int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> part(blocks);
#pragma omp parallel for if (blocks > 1) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t i0 = b * kBlock, i1 = std::min(n, i0 + kBlock);
      float acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = i0; i < i1; ++i) acc += load(s, i) * load(s, i);
      part[b] = acc;
    }
    for (double p : part) total += p;
  });
  out.data<float>()[0] = static_cast<float>(total);
}

void CpuBackend::permute(const Tensor& src, const Tensor& dst, const int* perm) {
  const int nd = src.ndim();
  const size_t es = dtype_size(src.dtype());
  // Source strides (in elements) read in destination order.
  int64_t sstride[Shape::kMaxDims], dshape[Shape::kMaxDims];
  int64_t st = 1, natural[Shape::kMaxDims];
  for (int i = nd - 1; i >= 0; --i) {
    natural[i] = st;
    st *= src.dim(i);
  }
  for (int i = 0; i < nd; ++i) {
    sstride[i] = natural[perm[i]];
    dshape[i] = dst.dim(i);
  }
  // Copy whole runs when the last dim stays last.
  const int64_t run = (perm[nd - 1] == nd - 1) ? dshape[nd - 1] : 1;
  const int64_t runs = dst.numel() / run;
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
#pragma omp parallel for if (dst.numel() > (1 << 15)) schedule(static)
  for (int64_t r = 0; r < runs; ++r) {
    int64_t rem = r * run, off = 0;
    for (int i = nd - 1; i >= 0; --i) {
      int64_t idx = rem % dshape[i];
      rem /= dshape[i];
      off += idx * sstride[i];
    }
    if (run > 1) {
      std::memcpy(d + r * run * es, s + off * es, run * es);
    } else {
      std::memcpy(d + r * es, s + off * es, es);
    }
  }
}

void CpuBackend::copy_block(const Tensor& src, const Tensor& dst, int64_t outer, int64_t src_dim,
                            int64_t dst_dim, int64_t src_off, int64_t dst_off, int64_t len,
                            int64_t inner) {
  const size_t es = dtype_size(src.dtype());
  const size_t bytes = len * inner * es;
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
#pragma omp parallel for if (outer * bytes > (1 << 17)) schedule(static)
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(d + ((o * dst_dim + dst_off) * inner) * es,
                s + ((o * src_dim + src_off) * inner) * es, bytes);
}

}  // namespace bb
