// `bigbatch report`: one self-contained HTML file for one run or several overlaid: the runs'
// headers side by side, the keys that differ, and the charts as inline SVG (no script, no
// network at view time). docs/report.md shows what it holds.
#pragma once
#include <string>
#include <vector>

#include "cli/run_record.h"

namespace bb {

// Runs of different kinds (a language model and an image classifier) share no axes: refused.
std::string render_report(const std::vector<RunRecord>& runs);

// Renders and writes atomically (a temporary file, then a rename).
void write_report(const std::vector<RunRecord>& runs, const std::string& path);

// What `train` calls at each checkpoint and at the end: out_dir/report.html from the folder
// as it is now.
void write_run_report(const std::string& out_dir);

// The first line of every report: how `bigbatch report` knows a file it may replace.
inline constexpr const char* kReportMarker = "<meta name=\"generator\" content=\"bigbatch report\">";

}  // namespace bb
