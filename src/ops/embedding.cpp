// Embedding lookup; its gradient scatter-adds rows into an f32 table gradient.
#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

Tensor embedding(const Tensor& table, const Tensor& ids) {
  OpScope scope("embedding");
  check_float("embedding", table, "table");
  check_defined("embedding", ids, "ids");
  if (table.ndim() != 2) shape_error("embedding", fmt::format("table must be 2-D, got {}", table.desc()));
  if (ids.dtype() != DType::I64 && ids.dtype() != DType::I32)
    shape_error("embedding", fmt::format("ids must be integers, got {}", ids.desc()));
  std::vector<int64_t> dims = ids.shape().vec();
  dims.push_back(table.dim(1));
  Tensor out = Tensor::empty(Shape(dims), table.dtype(), table.device());
  kernels(table).embedding(table, ids, out);
  if (will_record({table})) {
    Tensor sids = ids.detach();
    Shape tshape = table.shape();
    record("embedding", {table}, {out}, [sids, tshape](const std::vector<Tensor>& g) {
      Tensor dt = Tensor::zeros(tshape, DType::F32, g[0].device());
      kernels(g[0]).embedding_backward(g[0].view({-1, tshape[1]}), sids, dt);
      return std::vector<Tensor>{dt};
    });
  }
  return out;
}

}  // namespace bb
