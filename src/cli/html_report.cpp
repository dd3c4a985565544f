// The run report's page: see html_report.h.
#include "cli/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli/report_charts.h"
#include "cli/svg_chart.h"
#include "core/allocator.h"
#include "core/error.h"
#include "io/atomic_file.h"

namespace bb {

namespace {

const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; font-size: 13px; }
th { background: #f3f3f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { border: 1px solid #eee; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; }
.warn { color: #a40; }
)";

double number_or_nan(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}

std::string text_or(const nlohmann::json& j, const char* key, const std::string& fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// The largest finite value of a field over the run's steps (NaN when none).
double run_max(const RunRecord& r, const char* key) {
  double m = std::nan("");
  for (const auto& s : r.steps) {
    const double v = record_number(s, key);
    if (std::isfinite(v) && !(v <= m)) m = v;
  }
  return m;
}

std::string bytes_or_dash(double v) { return std::isfinite(v) ? format_bytes(static_cast<int64_t>(v)) : "-"; }

// The rows of the header table: one column a run.
std::vector<std::pair<std::string, std::vector<std::string>>> header_rows(const std::vector<RunRecord>& runs) {
  const bool language = runs[0].language();
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  auto row = [&](const std::string& name, const auto& cell) {
    std::vector<std::string> cells;
    for (const auto& r : runs) cells.push_back(cell(r));  // an absent header field reads "?"
    rows.emplace_back(name, cells);
  };
  row("run folder", [](const RunRecord& r) { return r.dir; });
  row("configuration", [](const RunRecord& r) {
    std::string s = text_or(r.header, "config_file", "?");
    for (const auto& o : r.header.value("overrides", nlohmann::json::array()))
      if (o.is_string()) s.append(1, ' ').append(o.get<std::string>());
    return s;
  });
  row("model", [](const RunRecord& r) {
    const std::string init = text_or(r.header, "model_init", "");
    return text_or(r.header, "model", "?") + (init.empty() ? "" : " from " + init);
  });
  row("parameters", [](const RunRecord& r) {
    const int64_t lora = r.header.value("lora_r", int64_t(0));
    return fmt::format("{} ({} trained{})", text_or(r.header, "parameters", "?"),
                       text_or(r.header, "trained_parameters", "?"), lora > 0 ? fmt::format(", LoRA r={}", lora) : "");
  });
  row("effective batch", [&](const RunRecord& r) {
    const std::string ranks = text_or(r.header, "ranks", "?");
    return fmt::format("{} {} = {} micro-batches \u00d7 {} \u00d7 {} {}", text_or(r.header, "effective_batch", "?"),
                       language ? fmt::format("sequences of up to {} tokens", text_or(r.header, "block_size", "?"))
                                : "images",
                       text_or(r.header, "grad_accum", "?"), text_or(r.header, "micro_batch", "?"), ranks,
                       ranks == "1" ? "rank" : "ranks");
  });
  row("precision", [](const RunRecord& r) { return text_or(r.header, "precision", "?"); });
  row("checkpointing", [](const RunRecord& r) { return text_or(r.header, "checkpointing", "?"); });
  row("plan", [](const RunRecord& r) {
    const nlohmann::json p = r.header.value("prediction", nlohmann::json::object());
    if (text_or(p, "source", "") != "plan") return std::string("none: micro-batch and checkpointing as configured");
    return fmt::format("{} for a budget of {} ({} fixed overhead), {:.2f} s a step predicted", text_or(p, "plan", "?"),
                       bytes_or_dash(number_or_nan(p, "budget")), bytes_or_dash(number_or_nan(p, "overhead")),
                       number_or_nan(p, "step_seconds"));
  });
  row("predicted peak, counted", [](const RunRecord& r) {
    const nlohmann::json p = r.header.value("prediction", nlohmann::json::object());
    if (p.contains("error")) return "none: " + text_or(p, "error", "");
    return fmt::format("{} ({})", bytes_or_dash(number_or_nan(p, "peak")), text_or(p, "source", "?"));
  });
  row("measured peak of a step, counted", [](const RunRecord& r) { return bytes_or_dash(run_max(r, "mem_step_peak")); });
  row("peak resident memory", [](const RunRecord& r) { return bytes_or_dash(run_max(r, "rss_peak")); });
  row("progress", [](const RunRecord& r) {
    const int64_t done = r.steps.empty() ? 0 : r.steps.back().value("step", int64_t(0));
    const int64_t total = r.total_steps();
    return fmt::format("step {} of {}{}", done, total > 0 ? std::to_string(total) : "?",
                       total > 0 && done < total ? " (not finished when this report was written)" : "");
  });
  row(language ? "tokens seen" : "images seen", [&](const RunRecord& r) {
    double sum = 0;
    for (const auto& s : r.steps) sum += std::max(0.0, number_or_nan(s, language ? "tokens" : "images"));
    return fmt::format("{:.0f}", sum);
  });
  row("skipped windows", [](const RunRecord& r) {
    int64_t n = 0;
    for (const auto& s : r.steps) n += s.value("skipped", false) ? 1 : 0;
    return std::to_string(n);
  });
  row("last training loss", [](const RunRecord& r) {
    return r.steps.empty() ? std::string("-") : fmt::format("{:.4f}", record_number(r.steps.back(), "loss"));
  });
  row(language ? "last validation loss" : "last test accuracy", [&](const RunRecord& r) {
    for (auto it = r.steps.rbegin(); it != r.steps.rend(); ++it) {
      const double v = record_number(*it, language ? "val_loss" : "test_accuracy");
      if (std::isfinite(v))
        return language ? fmt::format("{:.4f} (step {})", v, it->value("step", 0))
                        : fmt::format("{:.2f}% (epoch {:.2f})", 100 * v, record_number(*it, "epoch"));
    }
    return std::string("-");
  });
  row(language ? "median tokens/s" : "median images/s", [&](const RunRecord& r) {
    std::vector<double> v;  // the first step warms the caches and kernels: left out
    for (size_t i = 1; i < r.steps.size(); ++i) v.push_back(record_number(r.steps[i], language ? "tokens_per_s" : "images_per_s"));
    const double m = median(v);
    return std::isfinite(m) ? fmt::format("{:.0f} (over {} steps after the first)", m, v.size()) : std::string("-");
  });
  row("started", [](const RunRecord& r) { return text_or(r.header, "started", "?"); });
  return rows;
}

std::string table(const std::vector<std::string>& head, const std::vector<std::pair<std::string, std::vector<std::string>>>& rows,
                  const char* id) {
  std::string out = fmt::format("<table id=\"{}\"><tr>", id);
  for (const auto& h : head) out += "<th>" + escape_html(h) + "</th>";
  out += "</tr>\n";
  for (const auto& [name, cells] : rows) {
    out += "<tr><th>" + escape_html(name) + "</th>";
    for (const auto& c : cells) out += "<td>" + escape_html(c) + "</td>";
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string render_checked(const std::vector<RunRecord>& runs) {
  const std::vector<std::string> keys = differing_keys(runs);
  const std::vector<std::string> labels = run_labels(runs, keys);
  const bool language = runs[0].language();
  std::string title = "bigbatch report: ";
  for (size_t i = 0; i < runs.size(); ++i) title += (i ? ", " : "") + runs[i].dir;

  std::string out = std::string("<!DOCTYPE html>\n") + kReportMarker + "\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  out += "<title>" + escape_html(title) + "</title>\n<style>" + kStyle + "</style></head>\n<body>\n";
  out += "<h1>" + escape_html(title) + "</h1>\n";
  out += fmt::format("<p class=\"sub\">{} {}: {}</p>\n", runs.size(), runs.size() == 1 ? "run" : "runs overlaid",
                     language ? "language model" : "image classifier");

  std::vector<std::string> head{""};
  for (size_t i = 0; i < runs.size(); ++i) head.push_back(runs.size() == 1 ? "run" : labels[i].substr(0, labels[i].find(':')));
  out += "<h2>Runs</h2>\n" + table(head, header_rows(runs), "runs");
  for (const auto& r : runs) {
    if (r.header.empty())
      out += "<p class=\"warn\">" + escape_html(r.dir) + " has no run.json: its header is unknown.</p>\n";
    if (r.partial_line)
      out += "<p class=\"warn\">" + escape_html(r.dir) + "/metrics.jsonl ends in a line still being written; "
             "the report shows the steps before it.</p>\n";
  }
  if (runs.size() > 1) {
    std::vector<std::pair<std::string, std::vector<std::string>>> rows;
    for (const auto& k : keys) {
      std::vector<std::string> cells;
      for (const auto& r : runs) {
        const auto& cfg = r.header.value("config", nlohmann::json::object());
        cells.push_back(text_or(cfg, k.c_str(), "?"));
      }
      rows.emplace_back(k, cells);
    }
    out += "<h2>Keys that differ</h2>\n";
    out += keys.empty() ? "<p>None: the runs share every configuration key but out_dir.</p>\n"
                        : table(head, rows, "differing-keys");
  }

  out += "<h2>Training</h2>\n<div class=\"charts\">\n";
  for (const LineChart& c : overlaid_charts(runs, labels)) out += render_line_chart(c);
  out += "</div>\n<h2>Memory</h2>\n<p class=\"sub\">The allocator's peak in each step, by category (solid), "
         "against the planner's prediction and the allocator's limit (levels); beside it the process's peak "
         "resident memory, which also holds the program, its libraries and the data, against the budget.</p>\n"
         "<div class=\"charts\">\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    out += render_line_chart(memory_chart(runs[i], labels[i], i));
    out += render_line_chart(resident_chart(runs[i], labels[i], i));
  }
  out += "</div>\n";
  if (!language) {
    out += "<h2>Confusion matrix of the last test</h2>\n<div class=\"charts\">\n";
    for (size_t i = 0; i < runs.size(); ++i) {
      const nlohmann::json* last = nullptr;
      for (const auto& s : runs[i].steps)
        if (s.contains("confusion") && s["confusion"].is_array()) last = &s;
      if (!last) {
        out += "<p>" + escape_html(runs[i].dir) + ": no test yet.</p>\n";
        continue;
      }
      const auto counts = (*last)["confusion"].get<std::vector<std::vector<int64_t>>>();
      std::vector<std::string> names = runs[i].header.value("classes", std::vector<std::string>{});
      out += render_heat_map(fmt::format("confusion-{}", i),
                             fmt::format("{}epoch {:.2f}", labels[i].empty() ? "" : labels[i] + ", ",
                                         record_number(*last, "epoch")),
                             "true class", "predicted class", counts, names);
    }
    out += "</div>\n";
  }
  out += "</body></html>\n";
  return out;
}

}  // namespace

std::string render_report(const std::vector<RunRecord>& runs) {
  if (runs.empty()) throw ConfigError("report: name at least one run folder");
  for (const auto& r : runs)
    if (r.language() != runs[0].language())
      throw ConfigError(fmt::format("report: {} trains a {} and {} a {}; their curves share no axes, so report them "
                                    "separately", runs[0].dir, runs[0].language() ? "language model" : "image classifier",
                                    r.dir, r.language() ? "language model" : "image classifier"));
  try {
    return render_checked(runs);
  } catch (const nlohmann::json::exception& e) {
    // A run.json or metrics record edited by hand into other types than bigbatch writes.
    std::string dirs;
    for (const auto& r : runs) dirs += (dirs.empty() ? "" : ", ") + r.dir;
    throw FormatError(fmt::format("a run.json or metrics.jsonl in {} holds a field of the wrong type ({})", dirs,
                                  e.what()));
  }
}

void write_report(const std::vector<RunRecord>& runs, const std::string& path) {
  write_text_atomic(path, render_report(runs));
}

void write_run_report(const std::string& out_dir) {
  write_report({read_run(out_dir)}, (std::filesystem::path(out_dir) / "report.html").string());
}

}  // namespace bb
