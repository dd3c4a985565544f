// Buckets of gradients posted to the communicator as the backward completes them.
#include "dist/grad_sync.h"

#include <algorithm>
#include <cstring>

#include "backend/backend.h"

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

GradSync::GradSync(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  const int64_t cap = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(sizeof(float)));
  param_bucket_.assign(params_.size(), -1);
  int64_t staging = 0;
  for (int64_t i = static_cast<int64_t>(params_.size()) - 1; i >= 0; --i) {
    const int64_t n = params_[i].numel();
    if (buckets_.empty() || buckets_.back().elements + n > cap) buckets_.emplace_back();
    Bucket& b = buckets_.back();
    b.params.push_back(i);
    b.elements += n;
    param_bucket_[i] = static_cast<int64_t>(buckets_.size()) - 1;
    param_index_[params_[i].impl()] = i;
  }
  for (Bucket& b : buckets_) {
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
  std::vector<int64_t> sizes;
  for (int64_t i : b.params) {
    grads.push_back(grad_of(params_[i]).data<float>());
    sizes.push_back(params_[i].numel());
  }
  Communicator* comm = &comm_;
  if (grads.size() == 1) {
    comm_.post([comm, g = grads[0], n = sizes[0]] { comm->allreduce_sum(g, n); });
    return;
  }
  float* staging = staging_.data<float>();
  comm_.post([comm, grads, sizes, staging, n = b.elements] {
    int64_t at = 0;
    for (size_t k = 0; k < grads.size(); at += sizes[k], ++k)
      std::memcpy(staging + at, grads[k], sizes[k] * sizeof(float));
    comm->allreduce_sum(staging, n);
    at = 0;
    for (size_t k = 0; k < grads.size(); at += sizes[k], ++k)
      std::memcpy(grads[k], staging + at, sizes[k] * sizeof(float));
  });
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
