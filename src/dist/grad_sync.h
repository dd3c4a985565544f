// GradSync: the gradient sum of data parallelism, once per window, overlapped with the last
// micro-batch's backward. Parameters are grouped into buckets of about dist.bucket_mb, in
// reverse order of the model (the order the backward finishes them); a bucket is handed to
// the communicator's thread as soon as its last parameter is done and every earlier bucket
// has gone, so all ranks post the same buckets in the same order and the sums are the same
// on every run.
//
// Under ZeRO-1 a bucket is reduce-scattered instead: each rank ends with the sum over its
// shard_range of the bucket only (zero_pieces says which elements of which parameter), updates
// that, and gather_params() then all-gathers the updated weights bucket by bucket.
#pragma once
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "dist/communicator.h"

namespace bb {

// The buckets for parameters of these element counts (in the model's order): indices in
// reverse order, each bucket up to bucket_bytes of f32 (a larger parameter alone).
std::vector<std::vector<int64_t>> plan_buckets(const std::vector<int64_t>& numels, int64_t bucket_bytes);

// The flat elements [offset, offset + length) of one parameter that a ZeRO-1 rank owns.
struct ShardPiece {
  int64_t offset = 0, length = 0;
};
// For each parameter, the piece `rank` of `ranks` owns: its share of its bucket's
// shard_range, laid out as GradSync lays the bucket out. Every element has one owner.
std::vector<ShardPiece> zero_pieces(const std::vector<int64_t>& numels, int64_t bucket_bytes, int rank, int ranks);

class GradSync {
 public:
  // params: the trained parameters, in the model's order. zero: reduce-scatter (ZeRO-1).
  GradSync(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes, bool zero = false);
  // The backward hook of the window's last micro-batch (autograd's LeafDone).
  void leaf_done(const TensorImpl& leaf);
  // Posts the buckets still waiting (parameters this rank's backward never reached, or a rank
  // without samples in this window) and waits for all; every parameter's .grad() then holds
  // the sum over ranks (under ZeRO-1, over this rank's pieces). Starts the next window.
  void finish();
  // ZeRO-1, after the update: every rank's pieces of the weights to every rank.
  void gather_params();
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
  // Posts work(data, n) over the bucket's floats of `of` (the gradients or the weights): in
  // place for one parameter, else through staging_, copied in and out.
  void post_over(const Bucket& b, std::vector<float*> of, void (Communicator::*work)(float*, int64_t));

  Communicator& comm_;
  bool zero_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, int64_t> param_index_;
  std::vector<int64_t> param_bucket_;
  std::vector<bool> done_;
  size_t next_ = 0;  // the first bucket not yet posted
  Tensor staging_;   // buckets of several parameters are summed here (MPI thread)
};

}  // namespace bb
