// Charts as inline SVG, for the run report: line charts on linear axes with round ticks, and
// a heat map. No script and no library: the file the report becomes draws anywhere, offline,
// and the same metrics always give the same bytes.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace bb {

struct ChartSeries {
  std::string name;   // the legend's label
  std::string color;  // any CSS colour
  std::vector<std::pair<double, double>> points;  // (x, y); a non-finite y breaks the line
  bool dashed = false;
  bool markers = false;  // a dot at each point (series of few points: validation, accuracy)
};

// A horizontal line across the plot: a prediction, a budget.
struct ChartLevel {
  std::string name, color;
  double y = 0;
};

enum class AxisUnits { Plain, Si, Bytes };  // 0.002 | 1.2M | 96 MiB

struct LineChart {
  std::string id, title, x_label, y_label;
  AxisUnits x_units = AxisUnits::Plain, y_units = AxisUnits::Plain;
  bool y_from_zero = false;  // memory and rates read better from 0
  std::vector<ChartSeries> series{};  // (initialisers: designated lists may leave these out)
  std::vector<ChartLevel> levels{};
};

// Each series becomes one <path class="series" data-series="NAME" data-points="N"> with one
// M or L command a finite point (and, with markers, as many <circle class="marker">), so that
// a reader can check what was drawn against the data. A chart without a finite point says so
// in its plot area.
std::string render_line_chart(const LineChart& chart);

// Cells coloured by row share (a confusion matrix: each true class's row sums to 1), with
// the count written in each; rows and columns named by `labels`.
std::string render_heat_map(const std::string& id, const std::string& title, const std::string& row_label,
                            const std::string& column_label, const std::vector<std::vector<int64_t>>& counts,
                            const std::vector<std::string>& labels);

// Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten), at most
// about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);
std::string format_tick(double v, AxisUnits units, double step);
std::string escape_html(const std::string& text);

}  // namespace bb
