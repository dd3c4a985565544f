// SIGINT and SIGTERM during `bigbatch train`: the first asks the loop to stop at the next
// optimizer-step boundary (with a checkpoint); a second stops the process at once, which is
// safe because checkpoints and model folders are replaced atomically.
#pragma once
#include <optional>
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
// After a step whose checkpoint (when one was due) is written: the exit code when the run
// stops here, saying why (a stop signal: 128 + its number; --stop-after: 0), else nothing.
// The last step never stops here: the run ends and saves its model anyway.
std::optional<int> stop_after_step(int signal, bool stop_after, bool last, int64_t step, int64_t run_steps,
                                   const std::string& checkpoint, const TrainArgs& a);

}  // namespace bb
