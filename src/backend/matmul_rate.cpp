// Timing of the CPU backend's matmul on constant operands.
#include "backend/matmul_rate.h"

#include <algorithm>
#include <chrono>

#include "backend/backend.h"
#include "core/tensor.h"

namespace bb {

double measure_matmul_flops(int64_t m, int64_t k, int64_t n, DType dtype, int reps) {
  Tensor a = Tensor::full(Shape{m, k}, 0.01f, dtype), b = Tensor::full(Shape{k, n}, 0.02f, dtype);
  Tensor c = Tensor::empty(Shape{m, n}, dtype);
  MatmulArgs args{.batch = 1, .m = m, .n = n, .k = k};
  Backend& kern = backend_for(Device::CPU);
  kern.matmul(a, b, Tensor(), c, args);
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    kern.matmul(a, b, Tensor(), c, args);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * double(m) * double(n) * double(k) / best;
}

}  // namespace bb
