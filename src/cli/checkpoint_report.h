// What both training loops write at a checkpoint: the checkpoint itself, then (unless
// report=false) out_dir/report.html from the run folder as it is now.
#pragma once
#include <string>

#include "nn/module.h"
#include "optim/optimizer.h"
#include "train/config.h"
#include "train/trainer.h"

namespace bb {

// True when every rank takes part in a checkpoint (dist.zero=1 over several ranks).
bool sharded_checkpoints(const Trainer& trainer);
void save_checkpoint_and_report(const std::string& checkpoint, const Module& model, Optimizer& opt,
                                const Trainer& trainer, const std::string& config_yaml, const RunConfig& cfg);

}  // namespace bb
