// Training checkpoints: everything needed to continue a run bit for bit (weights, optimizer
// state, step counters, loss scale, data cursor). Written at optimizer-step boundaries into
// a temporary folder that replaces the previous checkpoint only once complete.
#pragma once
#include <string>

#include "nn/module.h"
#include "optim/optimizer.h"
#include "train/trainer.h"

namespace bb {

struct CheckpointInfo {
  int64_t optimizer_steps = 0;
  int64_t skipped_steps = 0;
  int64_t cursor = 0;
  float loss_scale = 1;
  int64_t clean_steps = 0;
  std::string config_yaml;  // the run's resolved configuration, to check a resume against
};

void save_checkpoint(const std::string& dir, const Module& model, Optimizer& opt,
                     const Trainer& trainer, const std::string& config_yaml);
// Restores model weights, optimizer state and the trainer's position; returns what it read.
CheckpointInfo load_checkpoint(const std::string& dir, Module& model, Optimizer& opt, Trainer& trainer);
bool checkpoint_exists(const std::string& dir);

}  // namespace bb
