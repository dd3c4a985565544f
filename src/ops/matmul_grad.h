// The gradient rules of c = op(a) op(b), shared by matmul, linear and the fused linears.
#pragma once
#include "core/tensor.h"

namespace bb {

// Gradient of a, stored as given (transposed when ta).
Tensor matmul_grad_a(const Tensor& dc, const Tensor& b, bool ta, bool tb);
// Gradient of b, stored as given; a b shared over a's batch gets the sum over the batch.
Tensor matmul_grad_b(const Tensor& dc, const Tensor& a, const Tensor& b, bool ta, bool tb);

}  // namespace bb
