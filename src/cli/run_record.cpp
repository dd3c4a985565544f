// Reading a run folder back: see run_record.h.
#include "cli/run_record.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "io/atomic_file.h"

namespace bb {
namespace fs = std::filesystem;

namespace {

// A record must be an object with a whole, positive step, later than the one before.
void check_record(const nlohmann::json& j, const std::string& file, int64_t line, int64_t previous_step) {
  if (!j.is_object()) throw FormatError(fmt::format("{} line {} is not a JSON object", file, line));
  const auto it = j.find("step");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 1)
    throw FormatError(fmt::format("{} line {} has no step number", file, line));
  if (it->get<int64_t>() <= previous_step)
    throw FormatError(fmt::format("{} line {}: step {} comes after step {}", file, line, it->get<int64_t>(),
                                  previous_step));
  for (const auto& [key, value] : j.items())
    if (!value.is_number() && !value.is_null() && !value.is_boolean() && !value.is_object() && !value.is_array())
      throw FormatError(fmt::format("{} line {}: field '{}' is not a number", file, line, key));
}

}  // namespace

double record_number(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (it->is_boolean()) return it->get<bool>() ? 1.0 : 0.0;
  if (!it->is_number()) throw FormatError(fmt::format("metrics field '{}' is not a number", key));
  return it->get<double>();
}

RunRecord read_run(const std::string& dir) {
  RunRecord run;
  run.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw FormatError(fmt::format("{} is not a folder (give a run's out_dir)", dir));
  const std::string header_path = (fs::path(dir) / "run.json").string();
  run.header = nlohmann::json::object();
  if (fs::exists(header_path, ec)) {
    run.header = nlohmann::json::parse(read_text_file(header_path), nullptr, false);
    if (run.header.is_discarded() || !run.header.is_object())
      throw FormatError(fmt::format("{} is not a JSON object", header_path));
  }
  const std::string metrics_path = (fs::path(dir) / "metrics.jsonl").string();
  if (!fs::exists(metrics_path, ec))
    throw FormatError(fmt::format("{} does not exist: {} holds no bigbatch run (or its first step has not ended)",
                                  metrics_path, dir));
  const std::string text = read_text_file(metrics_path);
  int64_t line = 0, previous_step = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = text.find('\n', pos);
    const bool complete = end != std::string::npos;
    const std::string_view body(text.data() + pos, (complete ? end : text.size()) - pos);
    pos = complete ? end + 1 : text.size();
    ++line;
    if (body.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) {
      if (!complete) {  // the writer is in the middle of this line
        run.partial_line = true;
        break;
      }
      throw FormatError(fmt::format("{} line {} is not valid JSON", metrics_path, line));
    }
    check_record(j, metrics_path, line, previous_step);
    previous_step = j["step"].get<int64_t>();
    run.steps.push_back(std::move(j));
  }
  return run;
}

void write_run_header(const std::string& dir, const nlohmann::json& header) {
  write_text_atomic((fs::path(dir) / "run.json").string(), header.dump(2) + "\n");
}

}  // namespace bb
