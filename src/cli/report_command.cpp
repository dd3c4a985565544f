// `bigbatch report RUN_DIR [RUN_DIR ...] [--out FILE.html]`: see html_report.h.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "cli/html_report.h"
#include "core/error.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

// A file bigbatch wrote as a report (its marker in the first lines) may be replaced; any
// other file only with --overwrite.
bool is_report(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find(kReportMarker) != std::string::npos;
}

}  // namespace

int run_report(const ReportArgs& a) {
  if (a.run_dirs.empty()) throw ConfigError("report: name at least one run folder");
  std::string out = a.out;
  if (out.empty()) out = a.run_dirs.size() == 1 ? (fs::path(a.run_dirs[0]) / "report.html").string() : "report.html";
  std::error_code ec;
  if (fs::is_directory(out, ec)) throw ConfigError(fmt::format("--out {} is a folder; name the HTML file to write", out));
  if (fs::exists(out, ec) && !a.overwrite && !is_report(out))
    throw ConfigError(fmt::format("--out {} exists and is not a bigbatch report; replace it with --overwrite", out));
  // Not even --overwrite may put the report over a run's own records.
  for (const std::string& dir : a.run_dirs)
    for (const char* own : {"metrics.jsonl", "run.json"})
      if (fs::equivalent(out, fs::path(dir) / own, ec))
        throw ConfigError(fmt::format("--out {} is the {} of run {}; name another file", out, own, dir));
  std::vector<RunRecord> runs;
  for (const std::string& dir : a.run_dirs) runs.push_back(read_run(dir));
  write_report(runs, out);
  size_t steps = 0;
  for (const auto& r : runs) steps += r.steps.size();
  fmt::print("wrote {}: {} of {} steps\n", out, runs.size() == 1 ? "1 run" : fmt::format("{} runs", runs.size()), steps);
  return 0;
}

}  // namespace bb
