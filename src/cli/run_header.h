// The header of a run (run.json): what the report shows above the curves, written by `train`
// at its start. docs/report.md lists the fields.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/config.h"
#include "train/job.h"
#include "train/planner.h"
#include "train/vision_job.h"

namespace bb {

// The memory the run's steps should take, by category. With a plan (train --memory-budget),
// the chosen row and its budget; else the planner's dry run of cfg as it is (language models:
// the planner plans those only; null for others, and for a dry run that failed, with the
// reason in "error").
nlohmann::json memory_prediction(const RunConfig& cfg, const PlanRow* plan, int64_t budget);

nlohmann::json language_run_header(const RunConfig& cfg, const std::string& config_file,
                                   const std::vector<std::string>& overrides, const Job& job,
                                   const nlohmann::json& prediction);
nlohmann::json vision_run_header(const RunConfig& cfg, const std::string& config_file,
                                 const std::vector<std::string>& overrides, const VisionJob& job);

}  // namespace bb
