// One exchange for all BatchNorm layers: per layer [count, mean(C), m2(C)] in doubles.
#include "train/batchnorm_sync.h"

#include <memory>
#include <vector>

#include "nn/vision_layers.h"

namespace bb {

void merge_batchnorm_windows(const Module& m, Communicator& comm) {
  std::vector<std::shared_ptr<BatchNorm2d>> layers;
  for (auto& [name, sub] : m.named_modules())
    if (auto bn = std::dynamic_pointer_cast<BatchNorm2d>(sub)) layers.push_back(bn);
  std::vector<double> mine;
  for (const auto& bn : layers) {
    const auto C = static_cast<size_t>(bn->options().channels);
    const BatchNorm2d::Window& w = bn->window();
    mine.push_back(w.count);
    for (size_t c = 0; c < C; ++c) mine.push_back(w.count > 0 ? w.mean[c] : 0.0);
    for (size_t c = 0; c < C; ++c) mine.push_back(w.count > 0 ? w.m2[c] : 0.0);
  }
  if (mine.empty()) return;
  const size_t per_rank = mine.size();
  std::vector<double> all(per_rank * static_cast<size_t>(comm.size()));
  comm.allgather(mine.data(), static_cast<int64_t>(per_rank * sizeof(double)), all.data());
  for (const auto& bn : layers) bn->clear_window();
  for (int r = 0; r < comm.size(); ++r) {
    const double* at = all.data() + per_rank * static_cast<size_t>(r);
    for (const auto& bn : layers) {
      const auto C = static_cast<size_t>(bn->options().channels);
      BatchNorm2d::Window w;
      w.count = at[0];
      w.mean.assign(at + 1, at + 1 + C);
      w.m2.assign(at + 1 + C, at + 1 + 2 * C);
      bn->merge_window(w);
      at += 1 + 2 * C;
    }
  }
}

}  // namespace bb
