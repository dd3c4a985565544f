// SIGINT and SIGTERM during `bigbatch train`: the first asks the loop to stop at the next
// optimizer-step boundary (with a checkpoint); a second stops the process at once, which is
// safe because checkpoints and model folders are replaced atomically.
#pragma once
#include <string>

#include "cli/commands.h"

namespace bb {

// Installs the handlers (they only record the signal); restores the defaults when destroyed.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  int received() const;  // the first signal caught (SIGINT, SIGTERM), 0 when none
  int exit_code() const { return 128 + received(); }  // 130 for SIGINT, 143 for SIGTERM
};

// The command line that continues the run of `a` from its checkpoint, quoted for a shell:
// the program as invoked, the same config and overrides, --resume (never --overwrite).
std::string resume_command(const TrainArgs& a);

// What `train` prints when a signal stopped it: the step, the checkpoint and how to resume.
std::string interrupted_message(int signal, int64_t step, const std::string& checkpoint, const TrainArgs& a);

}  // namespace bb
