// Training checkpoints: everything needed to continue a run bit for bit (weights, optimizer
// state, step counters, loss scale, data cursor). Written at optimizer-step boundaries into
// "<dir>.tmp", completed by manifest.json, and swapped in for the previous checkpoint in one
// step (docs/notes/crash-safety.md). Under ZeRO-1 over several ranks every rank calls
// save_checkpoint and writes its shard of the optimizer state (train/sharded_state.h).
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
// The newest complete checkpoint of `dir`: dir itself or "<dir>.old" (kept during a swap on a
// filesystem without RENAME_EXCHANGE); empty when neither is complete. "<dir>.tmp" is never one.
std::string find_checkpoint(const std::string& dir);
bool checkpoint_exists(const std::string& dir);
// The optimizer steps of a complete checkpoint folder (manifest.json present and its files of
// the sizes it names); -1 for anything else.
int64_t complete_checkpoint_steps(const std::string& dir);

}  // namespace bb
