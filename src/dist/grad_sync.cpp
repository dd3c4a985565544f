// Buckets of gradients posted to the communicator as the backward completes them.
#include "dist/grad_sync.h"

#include <algorithm>
#include <cstring>

#include "backend/backend.h"
#include "core/error.h"

namespace bb {
namespace {

// The parameter's gradient buffer, zero-filled when this rank's backward did not reach it:
// every rank must add the same tensors.
Tensor grad_of(Tensor& p) {
  Tensor g = p.grad();
  if (g.defined()) return g;
  g = Tensor::empty(p.shape(), DType::F32, p.device(), Category::Gradients);
  backend_for(p.device()).fill(g, 0.0f);
  p.set_grad(g);
  return g;
}

}  // namespace

std::vector<std::vector<int64_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t bucket_bytes) {
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  std::vector<std::vector<int64_t>> out;
  int64_t elements = 0;
  for (int64_t i = static_cast<int64_t>(numels.size()) - 1; i >= 0; --i) {
    if (out.empty() || elements + numels[i] > cap) {
      out.emplace_back();
      elements = 0;
    }
    out.back().push_back(i);
    elements += numels[i];
  }
  return out;
}

std::vector<ShardPiece> zero_pieces(const std::vector<int64_t>& numels, int64_t bucket_bytes, int rank, int ranks) {
  std::vector<ShardPiece> out(numels.size());
  for (const auto& bucket : plan_buckets(numels, bucket_bytes)) {
    int64_t total = 0;
    for (int64_t i : bucket) total += numels[i];
    const auto [lo, hi] = shard_range(total, rank, ranks);
    int64_t at = 0;  // the parameter's first element in the bucket
    for (int64_t i : bucket) {
      const int64_t a = std::max(lo, at), b = std::min(hi, at + numels[i]);
      if (a < b) out[i] = ShardPiece{a - at, b - a};
      at += numels[i];
    }
  }
  return out;
}

GradSync::GradSync(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes, bool zero)
    : comm_(comm), zero_(zero), params_(std::move(params)) {
  std::vector<int64_t> numels;
  for (const Tensor& p : params_) numels.push_back(p.numel());
  param_bucket_.assign(params_.size(), -1);
  int64_t staging = 0;
  for (const auto& plan : plan_buckets(numels, bucket_bytes)) {
    Bucket& b = buckets_.emplace_back();
    b.params = plan;
    for (int64_t i : plan) {
      b.elements += numels[i];
      param_bucket_[i] = static_cast<int64_t>(buckets_.size()) - 1;
      param_index_[params_[i].impl()] = i;
    }
    b.missing = static_cast<int64_t>(b.params.size());
    if (b.params.size() > 1) staging = std::max(staging, b.elements);
  }
  done_.assign(params_.size(), false);
  if (staging > 0 && !params_.empty())
    staging_ = Tensor::empty(Shape{staging}, DType::F32, params_[0].device(), Category::Gradients);
}

int64_t GradSync::bucket_of(int64_t param) const { return param_bucket_.at(static_cast<size_t>(param)); }

void GradSync::leaf_done(const TensorImpl& leaf) {
  auto it = param_index_.find(&leaf);
  if (it == param_index_.end() || done_[it->second]) return;  // a frozen leaf, or seen already
  done_[it->second] = true;
  --buckets_[param_bucket_[it->second]].missing;
  launch_ready();
}

void GradSync::launch_ready() {
  while (next_ < buckets_.size() && buckets_[next_].missing == 0) launch(buckets_[next_++]);
}

void GradSync::launch(Bucket& b) {
  // Buffers are made here, on the training thread (the allocator is not shared); the MPI
  // thread only reads and writes their floats, which the backward no longer touches.
  std::vector<float*> grads;
  for (int64_t i : b.params) grads.push_back(grad_of(params_[i]).data<float>());
  using Work = void (Communicator::*)(float*, int64_t);
  const Work sum = &Communicator::allreduce_sum;  // the float overload
  post_over(b, std::move(grads), zero_ ? &Communicator::reduce_scatter_sum : sum);
}

void GradSync::post_over(const Bucket& b, std::vector<float*> of, void (Communicator::*work)(float*, int64_t)) {
  Communicator* comm = &comm_;
  if (of.size() == 1) {
    comm_.post([comm, work, g = of[0], n = b.elements] { (comm->*work)(g, n); });
    return;
  }
  std::vector<int64_t> sizes;
  for (int64_t i : b.params) sizes.push_back(params_[i].numel());
  float* staging = staging_.data<float>();
  comm_.post([comm, work, of = std::move(of), sizes = std::move(sizes), staging, n = b.elements] {
    int64_t at = 0;
    for (size_t k = 0; k < of.size(); at += sizes[k], ++k) std::memcpy(staging + at, of[k], sizes[k] * sizeof(float));
    (comm->*work)(staging, n);
    at = 0;
    for (size_t k = 0; k < of.size(); at += sizes[k], ++k) std::memcpy(of[k], staging + at, sizes[k] * sizeof(float));
  });
}

void GradSync::gather_params() {
  for (const Bucket& b : buckets_) {
    std::vector<float*> weights;
    for (int64_t i : b.params) {
      if (params_[i].dtype() != DType::F32) throw Error("ZeRO-1 gathers f32 weights only");
      weights.push_back(params_[i].data<float>());
    }
    post_over(b, std::move(weights), &Communicator::allgather_shards);
  }
  comm_.drain();
}

void GradSync::finish() {
  for (Bucket& b : buckets_) b.missing = 0;
  launch_ready();
  comm_.drain();
  next_ = 0;
  std::fill(done_.begin(), done_.end(), false);
  for (Bucket& b : buckets_) b.missing = static_cast<int64_t>(b.params.size());
}

}  // namespace bb
