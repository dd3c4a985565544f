// What a run folder tells about its run, read back for the report: the header that `train`
// writes at its start (run.json) and the metrics record of every step (metrics.jsonl).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bb {

struct RunRecord {
  std::string dir;                    // as the user named it
  nlohmann::json header;              // run.json; an empty object when the folder has none
  std::vector<nlohmann::json> steps;  // metrics.jsonl, one object a step, steps increasing
  bool partial_line = false;          // the last line was still being written (left out)
  bool language() const { return header.value("kind", std::string("language")) == "language"; }
  int64_t total_steps() const { return header.value("total_steps", int64_t(0)); }
};

// Reads dir/run.json (optional) and dir/metrics.jsonl. A run in progress reads as far as it
// has come: a last line without its newline that does not parse is left out. A missing
// folder or metrics file, or a malformed line anywhere else, throws FormatError naming the
// file (and the line).
RunRecord read_run(const std::string& dir);

// run.json, written atomically: the header a report shows beside the curves.
void write_run_header(const std::string& dir, const nlohmann::json& header);

// A number field of a record: NaN when absent or null (JSON writes NaN as null), else the
// number; FormatError when it holds something else.
double record_number(const nlohmann::json& record, const char* key);

}  // namespace bb
