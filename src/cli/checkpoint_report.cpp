// The checkpoint, then the report: see checkpoint_report.h.
#include "cli/checkpoint_report.h"

#include "cli/html_report.h"
#include "train/checkpoint.h"

namespace bb {

bool sharded_checkpoints(const Trainer& trainer) { return trainer.options().zero && trainer.comm().size() > 1; }

void save_checkpoint_and_report(const std::string& checkpoint, const Module& model, Optimizer& opt,
                                const Trainer& trainer, const std::string& config_yaml, const RunConfig& cfg) {
  save_checkpoint(checkpoint, model, opt, trainer, config_yaml);  // under ZeRO-1, on every rank
  // After the checkpoint: a report that cannot be written leaves a run that resumes.
  if (cfg.report && trainer.comm().rank() == 0) write_run_report(cfg.out_dir);
}

}  // namespace bb
