// Cross-entropy, summed over target tokens (the trainer divides by the window's count: see
// docs/notes/loss-normalisation.md), and the chunked linear + cross-entropy that never holds
// all (rows, vocab) logits: it computes its gradients chunk by chunk during the forward and
// saves those, which costs one (V, C) buffer instead of a (rows, V) one and no recompute.
#include <algorithm>

#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

void check_targets(std::string_view op, const Tensor& targets, int64_t rows) {
  check_dtype(op, targets, DType::I64, "targets");
  if (targets.numel() != rows)
    shape_error(op, fmt::format("{} targets for {} rows of logits", targets.numel(), rows));
}

// The value of a scalar gradient; meta tensors have none, and need none (no kernel runs).
float scalar_value(const Tensor& g) { return g.is_meta() ? 1.0f : g.item(); }

int64_t read_count(const Tensor& counted, int64_t rows) {
  return counted.is_meta() ? rows : static_cast<int64_t>(counted.item());
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     int64_t* count) {
  OpScope scope("cross_entropy");
  check_float("cross_entropy", logits, "logits");
  int64_t vocab = logits.dim(-1), rows = logits.numel() / vocab;
  check_targets("cross_entropy", targets, rows);
  Tensor loss = Tensor::empty(Shape{}, DType::F32, logits.device());
  Tensor counted = Tensor::empty(Shape{}, DType::F32, logits.device());
  Tensor l2 = logits.view({rows, vocab}), t1 = targets.view({rows});
  kernels(logits).cross_entropy(l2, t1, ignore_index, loss, counted, Tensor(), 1.0f);
  if (count) *count = read_count(counted, rows);
  if (will_record({logits})) {
    record("cross_entropy", {logits}, {loss}, [l2, t1, ignore_index, logits_shape = logits.shape()](
                                                 const std::vector<Tensor>& g) {
      Tensor dl = Tensor::empty(l2.shape(), l2.dtype(), l2.device());
      Tensor scratch = Tensor::empty(Shape{}, DType::F32, l2.device());
      Tensor scratch2 = Tensor::empty(Shape{}, DType::F32, l2.device());
      kernels(l2).cross_entropy(l2, t1, ignore_index, scratch, scratch2, dl, scalar_value(g[0]));
      return std::vector<Tensor>{dl.view(logits_shape.vec())};
    });
  }
  return loss;
}

Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets,
                            int64_t ignore_index, int64_t* count, int64_t chunk_rows,
                            float grad_scale) {
  OpScope scope("linear_cross_entropy");
  constexpr std::string_view op = "linear_cross_entropy";
  check_float(op, x, "x");
  check_float(op, w, "weight");
  if (w.ndim() != 2 || w.dim(1) != x.dim(-1) ||
      (w.dtype() != x.dtype() && w.dtype() != DType::F32))
    shape_error(op, fmt::format("weight {} does not match x {} (want (V, C), f32 or x's dtype)",
                                w.desc(), x.desc()));
  const int64_t c = x.dim(-1), vocab = w.dim(0), rows = x.numel() / c;
  check_targets(op, targets, rows);
  if (chunk_rows < 0)
    shape_error(op, fmt::format("chunk_rows {} is negative (0 picks the chunk size)", chunk_rows));
  // By default a chunk holds about 24M logits (96 MiB in f32): the weight-gradient product
  // accumulates into the whole (V, C) f32 gradient once a chunk, so a chunk must have rows
  // enough to hide that traffic (at V = 50257, C = 384, bf16: 256 rows run the three products
  // 12% slower than 512, and 1024 are slower again). The rows are split evenly, so no chunk
  // is a small remainder.
  if (chunk_rows == 0) {
    const int64_t target = std::max<int64_t>(16, (int64_t{24} << 20) / std::max<int64_t>(vocab, 1));
    const int64_t chunks = std::max<int64_t>(1, (rows + target / 2) / target);
    chunk_rows = (rows + chunks - 1) / chunks;
  }
  chunk_rows = std::min(chunk_rows, std::max<int64_t>(rows, 1));

  const bool grads = will_record({x, w});
  const bool weight_grad = grads && needs_grad(w);  // a frozen head (LoRA) needs no (V, C) buffer
  const Device dev = x.device();
  Backend& k = kernels(x);
  Tensor x2 = x.view({rows, c}), t1 = targets.view({rows});
  Tensor dx, dw;
  if (grads) {
    dx = Tensor::empty(Shape{rows, c}, x.dtype(), dev);
    if (weight_grad) dw = Tensor::empty(Shape{vocab, c}, DType::F32, dev);
  }
  Tensor loss = Tensor::zeros(Shape{}, DType::F32, dev);
  Tensor counted = Tensor::zeros(Shape{}, DType::F32, dev);
  {
    CategoryScope ws(Category::Workspace);
    // An f32 master weight is read in x's dtype; its gradient stays f32.
    Tensor wc = w;
    if (w.dtype() != x.dtype()) {
      wc = Tensor::empty(w.shape(), x.dtype(), dev);
      k.cast(w, wc);
    }
    // The logits are f32 (the loss is formed from them); their gradient is written in x's
    // dtype, which the backward products read.
    Tensor logits = Tensor::empty(Shape{chunk_rows, vocab}, DType::F32, dev);
    Tensor dlogits = grads ? Tensor::empty(Shape{chunk_rows, vocab}, x.dtype(), dev) : Tensor();
    Tensor part_loss = Tensor::empty(Shape{}, DType::F32, dev);
    Tensor part_count = Tensor::empty(Shape{}, DType::F32, dev);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - r0);
      Tensor xc = x2.narrow_rows(r0, n), tc = t1.narrow_rows(r0, n);
      Tensor lc = logits.narrow_rows(0, n);
      MatmulArgs fwd{.batch = 1, .m = n, .n = vocab, .k = c, .trans_b = true};
      k.matmul(xc, wc, Tensor(), lc, fwd);
      Tensor dc = grads ? dlogits.narrow_rows(0, n) : Tensor();
      k.cross_entropy(lc, tc, ignore_index, part_loss, part_count, dc, grad_scale);
      k.binary(BinaryOp::Add, loss, part_loss, loss);
      k.binary(BinaryOp::Add, counted, part_count, counted);
      if (!grads) continue;
      MatmulArgs bx{.batch = 1, .m = n, .n = c, .k = vocab};
      k.matmul(dc, wc, Tensor(), dx.narrow_rows(r0, n), bx);
      if (!weight_grad) continue;
      MatmulArgs bw{.batch = 1, .m = vocab, .n = c, .k = n, .trans_a = true,
                    .accumulate = r0 > 0};
      k.matmul(dc, xc, Tensor(), dw, bw);
    }
  }
  if (count) *count = read_count(counted, rows);
  if (grads) {
    Shape xs = x.shape();
    bool nx = needs_grad(x), nw = needs_grad(w);
    DType wdt = w.dtype();
    record(op, {x, w}, {loss}, [dx, dw, xs, nx, nw, wdt, grad_scale](const std::vector<Tensor>& g) {
      // The saved gradients carry grad_scale already; a seed other than the expected one is
      // made up for in place (they belong to this node alone).
      float s = scalar_value(g[0]) / grad_scale;
      if (s != 1.0f) {
        kernels(dx).scale_add(dx, s, Tensor(), dx);
        if (dw.defined()) kernels(dw).scale_add(dw, s, Tensor(), dw);
      }
      return std::vector<Tensor>{nx ? dx.view(xs.vec()) : Tensor(), nw ? cast(dw, wdt) : Tensor()};
    });
  }
  return loss;
}

}  // namespace bb
