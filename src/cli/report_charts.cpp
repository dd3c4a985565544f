// The report's charts: see report_charts.h.
#include "cli/report_charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <filesystem>
#include <limits>

#include "core/allocator.h"
#include "train/config.h"

namespace bb {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string config_value(const RunRecord& run, const std::string& key) {
  const auto config = run.header.find("config");
  if (config == run.header.end() || !config->is_object()) return "?";
  const auto it = config->find(key);
  return it != config->end() && it->is_string() ? it->get<std::string>() : "?";
}

std::string folder_name(const std::string& dir) {
  std::filesystem::path p(dir);
  if (p.filename().empty()) p = p.parent_path();  // "runs/k8/"
  return p.filename().string();
}

// (x, y) of every step: x is the step, or what `cumulative` sums up to that step.
std::vector<std::pair<double, double>> curve(const RunRecord& run, const char* y_key, const char* cumulative = nullptr,
                                             bool only_present = false) {
  std::vector<std::pair<double, double>> points;
  double sum = 0;
  for (const auto& s : run.steps) {
    if (cumulative) {
      const double add = record_number(s, cumulative);
      if (std::isfinite(add) && add > 0) sum += add;
    }
    const double y = record_number(s, y_key);
    if (only_present && !std::isfinite(y)) continue;
    points.emplace_back(cumulative ? sum : record_number(s, "step"), y);
  }
  return points;
}

std::string prefixed(const std::string& label, const std::string& what) {
  return label.empty() ? what : label + ": " + what;
}

bool any_fp16_or_skipped(const std::vector<RunRecord>& runs) {
  for (const auto& r : runs) {
    if (r.header.value("precision", std::string()) == "fp16") return true;
    for (const auto& s : r.steps)
      if (s.value("skipped", false)) return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> differing_keys(const std::vector<RunRecord>& runs) {
  std::vector<std::string> keys;
  if (runs.size() < 2) return keys;
  const auto first = runs[0].header.find("config");
  if (first == runs[0].header.end() || !first->is_object()) return keys;
  for (const auto& [key, value] : first->items()) {
    if (key == "out_dir" || key == "report") continue;
    for (size_t i = 1; i < runs.size(); ++i)
      if (config_value(runs[i], key) != config_value(runs[0], key)) {
        keys.push_back(key);
        break;
      }
  }
  // nlohmann's object sorts keys; the report lists them in the order `bigbatch train --help` does.
  std::vector<std::string> ordered;
  for (const auto& k : config_keys())
    if (std::find(keys.begin(), keys.end(), k.name) != keys.end()) ordered.push_back(k.name);
  return ordered;
}

std::vector<std::string> run_labels(const std::vector<RunRecord>& runs, const std::vector<std::string>& keys) {
  std::vector<std::string> labels;
  if (runs.size() < 2) return std::vector<std::string>(runs.size());
  for (const auto& run : runs) {
    std::string label = folder_name(run.dir);
    for (size_t k = 0; k < keys.size() && k < 3; ++k)
      label += fmt::format("{}{}={}", k ? ", " : ": ", keys[k], config_value(run, keys[k]));
    if (keys.size() > 3) label += ", ...";
    labels.push_back(label);
  }
  return labels;
}

std::string run_color(size_t index) {
  static const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return palette[index % std::size(palette)];
}

std::vector<LineChart> overlaid_charts(const std::vector<RunRecord>& runs, const std::vector<std::string>& labels) {
  const bool language = runs.empty() || runs[0].language();
  const char* seen = language ? "tokens" : "images";
  std::vector<LineChart> charts;
  LineChart by_step{.id = "loss-step", .title = "Loss", .x_label = "optimizer step", .y_label = "loss"};
  LineChart by_seen{.id = "loss-seen", .title = fmt::format("Loss against {} seen", seen),
                    .x_label = fmt::format("{} seen", seen), .y_label = "loss", .x_units = AxisUnits::Si};
  LineChart lr{.id = "lr", .title = "Learning rate", .x_label = "optimizer step", .y_label = "learning rate",
               .y_from_zero = true};
  LineChart norm{.id = "grad-norm", .title = "Gradient norm (global, before clipping)", .x_label = "optimizer step",
                 .y_label = "norm", .y_from_zero = true};
  LineChart speed{.id = "speed", .title = language ? "Tokens per second" : "Images per second",
                  .x_label = "optimizer step", .y_label = language ? "tokens/s" : "images/s",
                  .y_units = AxisUnits::Si, .y_from_zero = true};
  LineChart scale{.id = "loss-scale", .title = "Loss scale and skipped windows", .x_label = "optimizer step",
                  .y_label = "loss scale", .y_units = AxisUnits::Si, .y_from_zero = true};
  LineChart accuracy{.id = "test-accuracy", .title = "Test accuracy", .x_label = "epoch", .y_label = "accuracy (%)"};
  LineChart test_loss{.id = "test-loss", .title = "Test loss", .x_label = "epoch", .y_label = "loss"};
  const char* held_out = language ? "validation loss" : "test loss";
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunRecord& r = runs[i];
    const std::string color = run_color(i), label = labels[i];
    const char* value_key = language ? "val_loss" : "test_loss";
    by_step.series.push_back({prefixed(label, "training loss"), color, curve(r, "loss")});
    by_seen.series.push_back({prefixed(label, "training loss"), color, curve(r, "loss", seen)});
    by_step.series.push_back({prefixed(label, held_out), color, curve(r, value_key, nullptr, true), true, true});
    // The held-out loss at the tokens seen by its step.
    std::vector<std::pair<double, double>> held;
    for (const auto& [x, y] : curve(r, value_key, seen))
      if (std::isfinite(y)) held.emplace_back(x, y);
    by_seen.series.push_back({prefixed(label, held_out), color, held, true, true});
    lr.series.push_back({prefixed(label, "learning rate"), color, curve(r, "lr")});
    norm.series.push_back({prefixed(label, "gradient norm"), color, curve(r, "grad_norm")});
    speed.series.push_back({prefixed(label, language ? "tokens/s" : "images/s"), color,
                            curve(r, language ? "tokens_per_s" : "images_per_s")});
    scale.series.push_back({prefixed(label, "loss scale"), color, curve(r, "loss_scale")});
    std::vector<std::pair<double, double>> skipped;
    for (const auto& s : r.steps)
      if (s.value("skipped", false)) skipped.emplace_back(record_number(s, "step"), record_number(s, "loss_scale"));
    ChartSeries skips{prefixed(label, "skipped windows"), color, skipped, false, true};
    scale.series.push_back(skips);
    if (!language) {
      std::vector<std::pair<double, double>> acc, tl;
      for (const auto& s : r.steps) {
        const double a = record_number(s, "test_accuracy");
        if (!std::isfinite(a)) continue;
        acc.emplace_back(record_number(s, "epoch"), 100 * a);
        tl.emplace_back(record_number(s, "epoch"), record_number(s, "test_loss"));
      }
      accuracy.series.push_back({prefixed(label, "test accuracy"), color, acc, false, true});
      test_loss.series.push_back({prefixed(label, "test loss"), color, tl, false, true});
    }
  }
  charts = {by_step, by_seen, lr, norm, speed};
  if (any_fp16_or_skipped(runs)) charts.push_back(scale);
  if (!language) {
    charts.push_back(accuracy);
    charts.push_back(test_loss);
  }
  return charts;
}

LineChart memory_chart(const RunRecord& run, const std::string& label, size_t index) {
  LineChart c{.id = fmt::format("memory-{}", index),
              .title = label.empty() ? "Memory of each step" : "Memory of each step: " + label,
              .x_label = "optimizer step", .y_label = "bytes", .y_units = AxisUnits::Bytes, .y_from_zero = true};
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
  static_assert(std::size(colors) == kNumCategories, "a colour for each category");
  const nlohmann::json& prediction = run.header.contains("prediction") ? run.header["prediction"] : nlohmann::json();
  for (int cat = 0; cat < kNumCategories; ++cat) {
    const std::string name(category_name(Category(cat)));
    std::vector<std::pair<double, double>> points;
    for (const auto& s : run.steps) {
      const auto by = s.find("mem_step_peak_by");
      const double v = by != s.end() && by->is_object() && by->contains(name) && (*by)[name].is_number()
                           ? (*by)[name].get<double>() : kNaN;
      points.emplace_back(record_number(s, "step"), v);
    }
    // Quantized weights only where a q8_0 / q4_0 base held some.
    const bool held = std::any_of(points.begin(), points.end(), [](const auto& p) { return p.second > 0; });
    if (Category(cat) == Category::QuantizedWeights && !held) continue;
    c.series.push_back({name, colors[cat], points});
    if (prediction.is_object() && prediction.contains("peak_by") && prediction["peak_by"].contains(name) &&
        prediction["peak_by"][name].get<double>() > 0)
      c.levels.push_back({"predicted " + name, colors[cat], prediction["peak_by"][name].get<double>()});
  }
  c.series.push_back({"all counted", "#222222", curve(run, "mem_step_peak")});
  if (prediction.is_object() && prediction.contains("peak"))
    c.levels.push_back({"predicted peak, all counted", "#222222", prediction["peak"].get<double>()});
  if (prediction.is_object() && prediction.contains("budget") && prediction.contains("overhead"))
    c.levels.push_back({"the allocator's limit: budget less the fixed overhead", "#b00000",
                        prediction["budget"].get<double>() - prediction["overhead"].get<double>()});
  return c;
}

LineChart resident_chart(const RunRecord& run, const std::string& label, size_t index) {
  LineChart c{.id = fmt::format("resident-{}", index),
              .title = label.empty() ? "Peak resident memory" : "Peak resident memory: " + label,
              .x_label = "optimizer step", .y_label = "bytes", .y_units = AxisUnits::Bytes, .y_from_zero = true};
  c.series.push_back({"peak resident (RSS)", "#555555", curve(run, "rss_peak")});
  const auto p = run.header.find("prediction");
  if (p != run.header.end() && p->is_object() && p->contains("budget")) {
    c.levels.push_back({"budget (whole process)", "#b00000", (*p)["budget"].get<double>()});
    if (p->contains("overhead") && p->contains("peak"))
      c.levels.push_back({"predicted: counted peak + fixed overhead", "#222222",
                          (*p)["peak"].get<double>() + (*p)["overhead"].get<double>()});
  }
  return c;
}

}  // namespace bb
