// The run folder (out_dir) of `bigbatch train`, checked before the first step: it must be
// writable, and a previous run in it is continued (--resume), replaced (--overwrite) or
// refused, never silently emptied.
#pragma once
#include <string>

#include "train/config.h"

namespace bb {

// Creates out_dir and probes that a file can be written in it; refuses a folder holding a run
// (metrics.jsonl, a checkpoint, a saved model or adapter) unless resume or overwrite; with
// overwrite, removes that run's files. Throws ConfigError or FormatError naming the folder.
void prepare_out_dir(const RunConfig& cfg, bool resume, bool overwrite);

}  // namespace bb
