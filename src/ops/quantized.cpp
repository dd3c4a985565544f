// linear through a frozen block-quantized weight, tile by tile. Each tile of rows is
// dequantized into a workspace in the activation dtype (a cast kernel) and multiplied by
// oneDNN (the matmul kernel), so the kernels are the ones every other product uses: bf16 on
// AVX512_BF16 or AMX, f32, the f16 widening, and the meta backend's counts. The tile is about
// 1 MiB, which stays in cache between its dequantization and its product.
#include <fmt/format.h>

#include <algorithm>

#include "ops/ops.h"
#include "ops/record.h"

namespace bb {
namespace {

constexpr int64_t kTileBytes = int64_t(1) << 20;
constexpr int64_t kTileRowStep = 64;  // oneDNN's blocking; also avoids its narrow-n bf16 fault

void check_quantized(std::string_view op, const Tensor& w) {
  if (!is_block_quantized(w.dtype()) || w.ndim() != 2)
    shape_error(op, fmt::format("weight must be a 2-D q8_0 or q4_0 tensor, got {}", w.desc()));
  if (needs_grad(w)) shape_error(op, "a quantized weight is frozen: it cannot require a gradient");
}

// The tiles of w's rows: [start, start + count).
template <typename Fn>
void for_each_tile(int64_t out, int64_t tile, Fn&& fn) {
  for (int64_t o0 = 0; o0 < out; o0 += tile) fn(o0, std::min(tile, out - o0));
}

// A (rows, cols) view of the first rows * cols elements of a flat workspace.
Tensor leading(const Tensor& flat, int64_t rows, int64_t cols) {
  return flat.narrow_rows(0, rows * cols).view({rows, cols});
}

// The workspace of one product through w (out, in) for m rows of activations: a tile of w's
// rows dequantized, and (when w takes more than one tile) an (m, tile) block of the
// activations' side. Allocated by the op, once per call, so the meta backend counts them.
struct TileWork {
  int64_t out, in, m, tile;
  Tensor wt, part;
  TileWork(const Tensor& w, int64_t rows_m, DType dtype, Device device)
      : out(w.dim(0)), in(w.dim(1)), m(rows_m), tile(quantized_tile_rows(out, in, dtype)) {
    wt = Tensor::empty(Shape{tile * in}, dtype, device, Category::Workspace);
    if (tile < out) part = Tensor::empty(Shape{m * tile}, dtype, device, Category::Workspace);
  }
  bool tiled() const { return tile < out; }
  // Rows [o0, o0 + rows) of w, dequantized into the workspace.
  Tensor weight_rows(Backend& k, const Tensor& w, int64_t o0, int64_t rows) const {
    Tensor t = leading(wt, rows, in);
    k.cast(w.narrow_rows(o0, rows), t);
    return t;
  }
  Tensor block(int64_t rows) const { return leading(part, m, rows); }
};

// dx (m, in) = dy (m, out) w: the input gradient, tiles of w's rows accumulated.
Tensor quantized_linear_grad(const Tensor& dy, const Tensor& w, DType dtype) {
  const int64_t out = w.dim(0), in = w.dim(1), m = dy.numel() / out;
  Tensor g = cast(dy, dtype).view({m, out});
  Tensor dx = Tensor::empty(Shape{m, in}, dtype, dy.device());
  const TileWork work(w, m, dtype, dy.device());
  Backend& k = kernels(dy);
  for_each_tile(out, work.tile, [&](int64_t o0, int64_t rows) {
    const Tensor wtile = work.weight_rows(k, w, o0, rows);
    Tensor src = g;
    if (work.tiled()) {
      src = work.block(rows);
      k.copy_block(g, src, m, out, rows, o0, 0, rows, 1);
    }
    k.matmul(src, wtile, Tensor(), dx,
             MatmulArgs{.m = m, .n = in, .k = rows, .b_batched = false, .accumulate = o0 > 0});
  });
  return dx;
}

}  // namespace

int64_t quantized_tile_rows(int64_t out, int64_t in, DType compute) {
  const int64_t es = std::max<int64_t>(2, int64_t(dtype_size(compute)));
  int64_t rows = kTileBytes / std::max<int64_t>(1, in * es) / kTileRowStep * kTileRowStep;
  return std::min(out, std::max(kTileRowStep, rows));
}

Tensor quantize(const Tensor& w, DType dtype, WeightLayout layout) {
  OpScope scope("quantize");
  check_float("quantize", w, "weight");
  if (!is_block_quantized(dtype)) shape_error("quantize", fmt::format("{} is not a block format", dtype_name(dtype)));
  if (w.ndim() != 2) shape_error("quantize", fmt::format("weight must be 2-D, got {}", w.desc()));
  NoGradGuard no_grad;
  Tensor rows = layout == WeightLayout::kInOut ? transpose(w, 0, 1) : w;  // (out, in): blocks along in
  if (rows.dim(1) % kQuantBlock != 0)
    shape_error("quantize", fmt::format("{} needs {} inputs to be a multiple of {}", dtype_name(dtype), rows.dim(1),
                                        kQuantBlock));
  Tensor q = Tensor::empty(rows.shape(), dtype, w.device(), Category::QuantizedWeights);
  kernels(w).cast(rows, q);
  return q;
}

Tensor quantized_linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  OpScope scope("quantized_linear");
  check_float("quantized_linear", x, "input");
  check_quantized("quantized_linear", w);
  check_same_device("quantized_linear", x, w);
  const int64_t out = w.dim(0), in = w.dim(1);
  if (x.ndim() < 1 || x.dim(-1) != in)
    shape_error("quantized_linear", fmt::format("input {} does not end in the weight's {} inputs", x.desc(), in));
  if (bias.defined()) {
    check_dtype("quantized_linear", bias, DType::F32, "bias");
    if (bias.ndim() != 1 || bias.dim(0) != out)
      shape_error("quantized_linear", fmt::format("bias {} does not match {} outputs", bias.desc(), out));
  }
  const int64_t m = x.numel() / in;
  std::vector<int64_t> dims = x.shape().vec();
  dims.back() = out;
  Tensor y = Tensor::empty(Shape(dims), x.dtype(), x.device());
  const Tensor x2 = x.view({m, in}), y2 = y.view({m, out});
  {
    const TileWork work(w, m, x.dtype(), x.device());  // released before the tape holds anything
    Backend& k = kernels(x);
    for_each_tile(out, work.tile, [&](int64_t o0, int64_t rows) {
      const Tensor wtile = work.weight_rows(k, w, o0, rows);
      const Tensor dst = work.tiled() ? work.block(rows) : y2;
      k.matmul(x2, wtile, bias.defined() ? bias.narrow_rows(o0, rows) : Tensor(), dst,
               MatmulArgs{.m = m, .n = rows, .k = in, .trans_b = true, .b_batched = false});
      if (work.tiled()) k.copy_block(dst, y2, m, rows, out, 0, o0, rows, 1);
    });
  }
  if (will_record({x, bias})) {
    Tensor sw = w.detach();
    const DType dtype = x.dtype();
    const bool nx = needs_grad(x), nb = needs_grad(bias);
    const std::vector<int64_t> xdims = x.shape().vec();
    record("quantized_linear", {x, bias}, {y}, [sw, dtype, nx, nb, xdims](const std::vector<Tensor>& g) {
      Tensor dx = nx ? quantized_linear_grad(g[0], sw, dtype).view(xdims) : Tensor();
      return std::vector<Tensor>{dx, nb ? cast(sum_to(g[0], Shape{g[0].dim(-1)}), DType::F32) : Tensor()};
    });
  }
  return y;
}

}  // namespace bb
