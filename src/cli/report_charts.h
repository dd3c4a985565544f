// The charts of a run report, made from run folders read back: the curves of all runs
// overlaid on shared axes, and each run's memory by category against its prediction.
#pragma once
#include <string>
#include <vector>

#include "cli/run_record.h"
#include "cli/svg_chart.h"

namespace bb {

// Configuration keys whose values differ between the runs (out_dir and report left out:
// they always differ or never matter), in documentation order.
std::vector<std::string> differing_keys(const std::vector<RunRecord>& runs);

// One label a run: with one run, empty; else the folder's name and its differing keys
// ("k8: train.grad_accum_steps=8, train.micro_batch_size=8").
std::vector<std::string> run_labels(const std::vector<RunRecord>& runs, const std::vector<std::string>& keys);

// The run's colour in every chart.
std::string run_color(size_t index);

// Loss against steps and against tokens (or images) seen, learning rate, gradient norm,
// speed, and, when a run has them, loss scale and skipped windows; vision runs add test
// accuracy and loss by epoch.
std::vector<LineChart> overlaid_charts(const std::vector<RunRecord>& runs, const std::vector<std::string>& labels);

// Each step's counted peak by category and in total, with the prediction and the allocator's
// limit (budget less the fixed overhead) as levels.
LineChart memory_chart(const RunRecord& run, const std::string& label, size_t index);
// The process's peak resident memory against the budget and the plan's whole prediction.
LineChart resident_chart(const RunRecord& run, const std::string& label, size_t index);

}  // namespace bb
