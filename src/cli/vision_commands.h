// The vision halves of `bigbatch train` and `bigbatch eval`, and `bigbatch export`; train and
// eval hand over here when the config's model.type or the model folder is a vision model.
#pragma once
#include <string>

#include "cli/commands.h"
#include "train/config.h"

namespace bb {

int run_train_vision(const TrainArgs& a, const RunConfig& cfg);
// True when dir/config.json describes an image classifier.
bool is_image_model_dir(const std::string& dir);
int run_eval_vision(const EvalArgs& a);

struct ExportArgs {
  std::string model_dir, format = "onnx", out;  // out: DIR/model.onnx when empty
  bool overwrite = false;  // replace an existing file at out (never one of the model's own)
};
int run_export(const ExportArgs& a);

}  // namespace bb
