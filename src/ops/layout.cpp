// Layout ops: reshape (a view), permute and transpose (copies), concat, split and slice
// (block copies), each with its gradient rule.
#include <numeric>

#include "ops/ops.h"
#include "ops/record.h"

namespace bb {

Tensor reshape(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out;
  try {
    out = x.view(dims);
  } catch (const ShapeError& e) {
    shape_error("reshape", e.what());
  }
  Shape in = x.shape();
  record("reshape", {x}, {out}, [in](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0].view(in.vec())};
  });
  return out;
}

Tensor permute(const Tensor& x, const std::vector<int>& perm) {
  OpScope scope("permute");
  check_defined("permute", x, "input");
  if (int(perm.size()) != x.ndim())
    shape_error("permute", fmt::format("{} axes given for {}", perm.size(), x.desc()));
  std::vector<int64_t> dims(x.ndim());
  std::vector<int> inverse(x.ndim(), -1);
  for (int i = 0; i < x.ndim(); ++i) {
    int p = check_axis("permute", x, perm[i]);
    if (inverse[p] >= 0) shape_error("permute", "an axis is named twice");
    inverse[p] = i;
    dims[i] = x.dim(p);
  }
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  std::vector<int> pn(x.ndim());
  for (int i = 0; i < x.ndim(); ++i) pn[i] = check_axis("permute", x, perm[i]);
  kernels(x).permute(x, out, pn.data());
  record("permute", {x}, {out}, [inverse](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{permute(g[0], inverse)};
  });
  return out;
}

Tensor transpose(const Tensor& x, int d0, int d1) {
  std::vector<int> perm(x.ndim());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[check_axis("transpose", x, d0)], perm[check_axis("transpose", x, d1)]);
  return permute(x, perm);
}

void write_slice(const Tensor& src, const Tensor& dst, int dim, int64_t offset) {
  OpScope scope("write_slice");
  check_defined("write_slice", src, "source");
  check_defined("write_slice", dst, "destination");
  const int d = check_axis("write_slice", dst, dim);
  bool fits = src.ndim() == dst.ndim() && src.dtype() == dst.dtype() && offset >= 0 &&
              offset + src.dim(d) <= dst.dim(d);
  for (int i = 0; fits && i < src.ndim(); ++i) fits = i == d || src.dim(i) == dst.dim(i);
  if (!fits)
    shape_error("write_slice", fmt::format("cannot write {} into {} at {} along dim {}", src.desc(), dst.desc(),
                                           offset, dim));
  if (will_record({src})) shape_error("write_slice", "has no gradient: it writes in place");
  const int64_t outer = dst.shape().prod(0, d), inner = dst.shape().prod(d + 1, dst.ndim());
  kernels(dst).copy_block(src, dst, outer, src.dim(d), dst.dim(d), 0, offset, src.dim(d), inner);
}

Tensor slice(const Tensor& x, int dim, int64_t start, int64_t length) {
  OpScope scope("slice");
  check_defined("slice", x, "input");
  int d = check_axis("slice", x, dim);
  if (start < 0 || length < 0 || start + length > x.dim(d))
    shape_error("slice", fmt::format("[{}, {}) is outside dim {} of {}", start, start + length, d,
                                     x.shape().str()));
  std::vector<int64_t> dims = x.shape().vec();
  dims[d] = length;
  Tensor out = Tensor::empty(Shape(dims), x.dtype(), x.device());
  int64_t outer = x.shape().prod(0, d), inner = x.shape().prod(d + 1, x.ndim());
  int64_t n = x.dim(d);
  kernels(x).copy_block(x, out, outer, n, length, start, 0, length, inner);
  Shape full = x.shape();
  record("slice", {x}, {out}, [full, outer, n, start, length, inner](const std::vector<Tensor>& g) {
    Tensor dx = Tensor::zeros(full, g[0].dtype(), g[0].device());
    kernels(g[0]).copy_block(g[0], dx, outer, length, n, 0, start, length, inner);
    return std::vector<Tensor>{dx};
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  OpScope scope("concat");
  if (xs.empty()) shape_error("concat", "no tensors given");
  const Tensor& x0 = xs[0];
  int d = check_axis("concat", x0, dim);
  std::vector<int64_t> dims = x0.shape().vec();
  dims[d] = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) {
    bool ok = x.ndim() == x0.ndim() && x.dtype() == x0.dtype();
    for (int i = 0; ok && i < x.ndim(); ++i) ok = i == d || x.dim(i) == x0.dim(i);
    if (!ok)
      shape_error("concat", fmt::format("{} does not fit {} along dim {}", x.desc(), x0.desc(), d));
    sizes.push_back(x.dim(d));
    dims[d] += x.dim(d);
  }
  Tensor out = Tensor::empty(Shape(dims), x0.dtype(), x0.device());
  int64_t outer = x0.shape().prod(0, d), inner = x0.shape().prod(d + 1, x0.ndim());
  int64_t off = 0;
  for (const Tensor& x : xs) {
    kernels(x).copy_block(x, out, outer, x.dim(d), dims[d], 0, off, x.dim(d), inner);
    off += x.dim(d);
  }
  record("concat", xs, {out}, [sizes, d](const std::vector<Tensor>& g) {
    return split(g[0], sizes, d);  // the gradient of concat is split
  });
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim) {
  OpScope scope("split");
  check_defined("split", x, "input");
  int d = check_axis("split", x, dim);
  int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  if (total != x.dim(d))
    shape_error("split", fmt::format("sizes add up to {}, dim {} of {} is {}", total, d,
                                     x.shape().str(), x.dim(d)));
  int64_t outer = x.shape().prod(0, d), inner = x.shape().prod(d + 1, x.ndim());
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    std::vector<int64_t> dims = x.shape().vec();
    dims[d] = s;
    out.push_back(Tensor::empty(Shape(dims), x.dtype(), x.device()));
    kernels(x).copy_block(x, out.back(), outer, x.dim(d), s, off, 0, s, inner);
    off += s;
  }
  // One node for all parts: the gradient of split is one concat.
  record("split", {x}, out, [d](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{concat(g, d)};
  });
  return out;
}

}  // namespace bb
