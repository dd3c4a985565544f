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
  // format: onnx or gguf, "" for the model's kind; out: DIR/model.onnx or DIR/model-TYPE.gguf when empty
  std::string model_dir, format, out;
  std::string type = "f16";  // gguf: f32, f16, bf16, q8_0, q4_0
  std::string adapter_dir;   // gguf: a PEFT LoRA adapter folded into the weights on the way
  bool overwrite = false;    // replace an existing file at out (never one of the model's own)
};
int run_export(const ExportArgs& a);
int run_export_gguf(const ExportArgs& a);  // cli/export_gguf.cpp
// The export never replaces a file the model is read from, and another file only with --overwrite.
void check_export_out(const ExportArgs& a, const std::string& out);

}  // namespace bb
