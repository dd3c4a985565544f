// GradSync: the gradient sum of data parallelism, once per window, overlapped with the last
// micro-batch's backward. Parameters are grouped into buckets of about dist.bucket_mb, in
// reverse order of the model (the order the backward finishes them); a bucket is handed to
// the communicator's thread as soon as its last parameter is done and every earlier bucket
// has gone, so all ranks post the same buckets in the same order and the sums are the same
// on every run.
#pragma once
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "dist/communicator.h"

namespace bb {

class GradSync {
 public:
  // params: the trained parameters, in the model's order.
  GradSync(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes);
  // The backward hook of the window's last micro-batch (autograd's LeafDone).
  void leaf_done(const TensorImpl& leaf);
  // Posts the buckets still waiting (parameters this rank's backward never reached, or a rank
  // without samples in this window) and waits for all; every parameter's .grad() then holds
  // the sum over ranks. Starts the next window.
  void finish();
  int64_t buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t bucket_of(int64_t param) const;  // for tests

 private:
  struct Bucket {
    std::vector<int64_t> params;
    int64_t elements = 0;
    int64_t missing = 0;  // parameters not yet done in this window
  };
  void launch_ready();
  void launch(Bucket& b);

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, int64_t> param_index_;
  std::vector<int64_t> param_bucket_;
  std::vector<bool> done_;
  size_t next_ = 0;  // the first bucket not yet posted
  Tensor staging_;   // buckets of several parameters are summed here (MPI thread)
};

}  // namespace bb
