// trainer.json, the record of a checkpoint's position: step counters, loss scale, data
// cursor and the run's configuration. Parsed apart from the folder so that every field is
// checked in one place (and can be fuzzed without a checkpoint around it).
#pragma once
#include <string>

#include "train/checkpoint.h"

namespace bb {

// The record in `text`; a missing or mistyped field, a negative counter or cursor, or a
// loss scale that is not a positive finite float is a FormatError naming `path` and the field.
CheckpointInfo parse_trainer_record(const std::string& text, const std::string& path);

}  // namespace bb
