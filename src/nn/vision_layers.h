// Vision layers on channels-last images (N, H, W, C): Conv2d, BatchNorm2d (with the explicit
// choice of what BatchNorm does under gradient accumulation) and GroupNorm. Weights are f32
// masters cast to the activation dtype on use; norm statistics stay f32.
#pragma once
#include <memory>
#include <vector>

#include "nn/context.h"
#include "nn/module.h"
#include "ops/ops.h"

namespace bb {

struct Conv2dOptions {
  int64_t in = 0, out = 0, kernel = 3, stride = 1, padding = 0, groups = 1;
  bool bias = false;
};

// weight (out, kernel, kernel, in / groups): channels-last "ohwi", NOT PyTorch's (out, in,
// kH, kW); ONNX export and PyTorch weights permute (0, 3, 1, 2) / (0, 2, 3, 1). bias (out).
class Conv2d : public Module {
 public:
  Conv2d(const Conv2dOptions& o, Device device);
  Tensor forward(const Tensor& x) const;  // (N, H, W, in) -> (N, OH, OW, out)
  const Conv2dOptions& options() const { return opt_; }
  Tensor& weight() { return weight_; }

 private:
  Conv2dOptions opt_;
  Tensor weight_, bias_;
};

// What BatchNorm does when a window holds K micro-batches (docs/notes/batchnorm-accumulation.md):
// kMicro  each micro-batch normalises with its own statistics; the running statistics are
//         updated once per window with the statistics of the whole window, merged exactly.
// kFrozen normalises with the running statistics and never updates them (fine-tuning).
// kGroup  models build GroupNorm instead, which does not depend on the batch at all.
enum class BatchNormMode { kMicro, kFrozen, kGroup };

// A norm over channels with an optional residual add and activation fused into it:
// act(norm(x) + residual). Models hold their norms through this, so one model builds with
// BatchNorm or GroupNorm.
class Norm2d : public Module {
 public:
  virtual Tensor forward(const Tensor& x, const Context& ctx, const Tensor& residual = Tensor(),
                         FusedAct act = FusedAct::kNone) const = 0;
};

struct BatchNormOptions {
  int64_t channels = 0;
  BatchNormMode mode = BatchNormMode::kMicro;
  float eps = 1e-5f;
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * window
};

// Named tensors weight, bias (trainable), running_mean, running_var, num_batches_tracked
// (i64), as in PyTorch; the running ones have requires_grad off, so they are saved and
// loaded by name but optimizers skip them.
class BatchNorm2d : public Norm2d {
 public:
  BatchNorm2d(const BatchNormOptions& o, Device device);
  // Training in kMicro mode: this batch's statistics, added to the window's unless the
  // context is a checkpoint replay. Otherwise: the running statistics.
  Tensor forward(const Tensor& x, const Context& ctx, const Tensor& residual = Tensor(),
                 FusedAct act = FusedAct::kNone) const override;
  // Applies the window's merged statistics to the running ones (once per window, with the
  // unbiased variance of all the window's rows, as one batch of K*B would) and starts a new
  // window. Nothing happens when the window saw no batch.
  void finish_window();

  // The window so far: rows seen, per-channel mean and sum of squared deviations (M2).
  struct Window {
    double count = 0;
    std::vector<double> mean, m2;
  };
  const Window& window() const { return window_; }
  const BatchNormOptions& options() const { return opt_; }
  // Merges another window's statistics into this one's (Chan's formula; data parallelism
  // merges every rank's window, in rank order, before finish_window), or clears it.
  void merge_window(const Window& other) const;
  void clear_window() const { window_ = Window{}; }

 private:
  void merge(const BatchNormStats& s) const;
  BatchNormOptions opt_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_;
  mutable Window window_;  // forward is const; the window is its one side effect
};

class GroupNorm : public Norm2d {
 public:
  GroupNorm(int64_t groups, int64_t channels, float eps, Device device);
  Tensor forward(const Tensor& x, const Context& ctx, const Tensor& residual = Tensor(),
                 FusedAct act = FusedAct::kNone) const override;

 private:
  int64_t groups_;
  float eps_;
  Tensor weight_, bias_;
};

// BatchNorm2d for kMicro and kFrozen, GroupNorm (`groups`, lowered until it divides the
// channels) for kGroup.
std::shared_ptr<Norm2d> make_norm2d(int64_t channels, BatchNormMode mode, int64_t groups,
                                    Device device);

// Calls finish_window() on every BatchNorm2d under `m`: the trainer's window-end hook.
void finish_window(const Module& m);

}  // namespace bb
