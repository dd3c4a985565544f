// Embedding lookup (a row gather) and its gradient (a row scatter-add into an f32 table).
// Ids are i64 or i32 and are all checked before anything is written. The backward splits the
// embedding dim among threads, so each element of the table is summed in id order by one
// thread: race-free and bit-identical whatever the thread count.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/elem.h"
#include "core/error.h"

namespace bb {

namespace {

// Calls fn with the ids pointer typed as i64 or i32.
template <typename Fn>
void dispatch_ids(const Tensor& ids, const char* op, Fn&& fn) {
  if (ids.dtype() == DType::I64) fn(ids.data<int64_t>());
  else if (ids.dtype() == DType::I32) fn(ids.data<int32_t>());
  else
    throw ShapeError(std::string(op) + " wants i64 or i32 ids, got " +
                     std::string(dtype_name(ids.dtype())));
}

template <typename I>
void check_ids(const I* ids, int64_t n, int64_t v, const char* op) {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= v)
      throw ShapeError(std::string(op) + ": id " + std::to_string(ids[i]) + " at position " +
                       std::to_string(i) + " is outside the table's " + std::to_string(v) +
                       " rows");
  }
}

template <typename T>
void scatter_add_cols(const T* __restrict g, float* __restrict table, int64_t c0, int64_t c1,
                      int64_t d, const auto* ids, int64_t n) {
  for (int64_t r = 0; r < n; ++r) {
    const T* __restrict src = g + r * d;
    float* __restrict dst = table + static_cast<int64_t>(ids[r]) * d;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) dst[c] += cpu::load(src, c);
  }
}

}  // namespace

void CpuBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  if (table.dtype() != out.dtype())
    throw ShapeError("embedding wants out in the table's dtype " +
                     std::string(dtype_name(table.dtype())) + ", got " +
                     std::string(dtype_name(out.dtype())));
  const int64_t v = table.shape()[0];
  const int64_t n = ids.numel();
  if (n == 0) return;
  const int64_t d = out.numel() / n;
  const size_t row_bytes = static_cast<size_t>(d) * dtype_size(table.dtype());
  const char* src = static_cast<const char*>(table.raw());
  char* dst = static_cast<char*>(out.raw());
  dispatch_ids(ids, "embedding", [&](const auto* id) {
    check_ids(id, n, v, "embedding");
#pragma omp parallel for schedule(static) if (n * d > (1 << 15))
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(dst + i * row_bytes, src + static_cast<int64_t>(id[i]) * row_bytes, row_bytes);
  });
}

void CpuBackend::embedding_backward(const Tensor& grad_out, const Tensor& ids,
                                    const Tensor& grad_table) {
  if (grad_table.dtype() != DType::F32)
    throw ShapeError("embedding_backward accumulates into an f32 table, got " +
                     std::string(dtype_name(grad_table.dtype())));
  if (!is_float(grad_out.dtype()))
    throw ShapeError("embedding_backward wants a float grad_out, got " +
                     std::string(dtype_name(grad_out.dtype())));
  const int64_t v = grad_table.shape()[0];
  const int64_t n = ids.numel();
  if (n == 0) return;
  const int64_t d = grad_out.numel() / n;
  float* table = grad_table.data<float>();
  dispatch_ids(ids, "embedding_backward", [&](const auto* id) {
    check_ids(id, n, v, "embedding_backward");
    cpu::dispatch_float(grad_out.dtype(), [&](auto tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      const T* g = grad_out.data<T>();
      // Column blocks are whole multiples of 16 floats (a cache line when d is a multiple of
      // 16), which keeps threads off each other's lines.
#pragma omp parallel if (n * d > (1 << 15))
      {
        const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t lines = (d + 15) / 16;
        const int64_t c0 = std::min(d, lines * t / nt * 16);
        const int64_t c1 = std::min(d, lines * (t + 1) / nt * 16);
        if (c0 < c1) scatter_add_cols(g, table, c0, c1, d, id, n);
      }
    });
  });
}

}  // namespace bb
