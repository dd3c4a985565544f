// The SVG writer of the run report: see svg_chart.h.
#include "cli/svg_chart.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace bb {

namespace {

constexpr double kWidth = 680, kPlotHeight = 300;  // two charts side by side on a laptop
constexpr double kLeft = 78, kRight = 24, kTop = 36, kBottom = 46;
constexpr double kLegendRow = 18;

// The binary unit a byte axis counts in: the largest that keeps `hi` at 1 or more.
double byte_unit(double hi) {
  double unit = 1;
  while (unit < double(int64_t(1) << 40) && std::fabs(hi) >= unit * 1024) unit *= 1024;
  return unit;
}

const char* byte_unit_name(double unit) {
  if (unit >= double(int64_t(1) << 40)) return "TiB";
  if (unit >= double(1 << 30)) return "GiB";
  if (unit >= double(1 << 20)) return "MiB";
  if (unit >= 1024) return "KiB";
  return "B";
}

int decimals_for(double step) {
  if (!(step > 0)) return 0;
  return std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

// Ticks for a range in the axis's units; a byte axis gets round values of its binary unit.
std::vector<double> axis_ticks(Range r, AxisUnits units, int target) {
  if (r.empty()) r = {0, 1};
  if (r.lo == r.hi) {
    const double pad = r.lo == 0 ? 1 : std::fabs(r.lo) * 0.1;
    r = {r.lo - pad, r.hi + pad};
  }
  if (units != AxisUnits::Bytes) return nice_ticks(r.lo, r.hi, target);
  const double unit = byte_unit(std::max(std::fabs(r.lo), std::fabs(r.hi)));
  std::vector<double> t = nice_ticks(r.lo / unit, r.hi / unit, target);
  for (double& v : t) v *= unit;
  return t;
}

std::string attr(const std::string& s) { return escape_html(s); }

}  // namespace

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  // Integer multiples of the step, so that 0.1 + 0.2 never prints as 0.30000000000000004.
  const auto first = static_cast<int64_t>(std::floor(lo / step + 1e-9));
  const auto last = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  std::vector<double> ticks;
  for (int64_t i = first; i <= last; ++i) ticks.push_back(static_cast<double>(i) * step);
  return ticks;
}

std::string format_tick(double v, AxisUnits units, double step) {
  if (std::fabs(v) < step * 1e-6) v = 0;  // no "-0"
  switch (units) {
    case AxisUnits::Bytes: {
      const double unit = byte_unit(std::max(std::fabs(v), step));
      return fmt::format("{:.{}f} {}", v / unit, decimals_for(step / unit), byte_unit_name(unit));
    }
    case AxisUnits::Si: {
      const double a = std::max(std::fabs(v), step);
      const double unit = a >= 1e9 ? 1e9 : a >= 1e6 ? 1e6 : a >= 1e3 ? 1e3 : 1;
      const char* suffix = unit == 1e9 ? "G" : unit == 1e6 ? "M" : unit == 1e3 ? "k" : "";
      return fmt::format("{:.{}f}{}", v / unit, decimals_for(step / unit), suffix);
    }
    case AxisUnits::Plain:
      if (step > 0 && step < 1e-4) return fmt::format("{:.2e}", v);
      return fmt::format("{:.{}f}", v, decimals_for(step));
  }
  return "";
}

std::string render_line_chart(const LineChart& c) {
  Range xr, yr;
  for (const auto& s : c.series)
    for (const auto& [x, y] : s.points)
      if (std::isfinite(x) && std::isfinite(y)) {
        xr.add(x);
        yr.add(y);
      }
  const bool no_data = xr.empty();
  for (const auto& l : c.levels) yr.add(l.y);
  if (c.y_from_zero && !yr.empty()) yr.add(0);
  const std::vector<double> xt = axis_ticks(xr, c.x_units, 8), yt = axis_ticks(yr, c.y_units, 6);
  const double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  const double pw = kWidth - kLeft - kRight, ph = kPlotHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * pw; };
  auto py = [&](double y) { return kTop + ph - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * ph; };

  const size_t legend_items = c.series.size() + c.levels.size();
  const double height = kPlotHeight + kLegendRow * double(legend_items) + 6;
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" id=\"{}\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      attr(c.id), kWidth, height, kWidth, height);
  out += fmt::format("<text x=\"{}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n", kLeft,
                     escape_html(c.title));
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n", kLeft,
                     kTop, pw, ph);
  for (double t : xt) {
    out += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
                       px(t), kTop, kTop + ph, kTop + ph + 16, escape_html(format_tick(t, c.x_units, xstep)));
  }
  for (double t : yt) {
    out += fmt::format("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#e4e4e4\"/>"
                       "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
                       kLeft, kLeft + pw, py(t), kLeft - 6, py(t) + 4, escape_html(format_tick(t, c.y_units, ystep)));
  }
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", kLeft + pw / 2,
                     kTop + ph + 36, escape_html(c.x_label));
  out += fmt::format("<text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     kTop + ph / 2, escape_html(c.y_label));
  if (no_data)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#777\">no data yet</text>\n",
                       kLeft + pw / 2, kTop + ph / 2);

  for (const auto& l : c.levels)
    out += fmt::format("<line class=\"level\" data-level=\"{0}\" x1=\"{1}\" x2=\"{2}\" y1=\"{3:.1f}\" "
                       "y2=\"{3:.1f}\" stroke=\"{4}\" stroke-width=\"1.5\" stroke-dasharray=\"8 3 2 3\"/>\n",
                       attr(l.name), kLeft, kLeft + pw, py(l.y), attr(l.color));
  for (const auto& s : c.series) {
    std::string d, dots;
    int64_t n = 0;
    bool pen_down = false;
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) {
        pen_down = false;  // a gap: NaN loss, a step without this value
        continue;
      }
      d += fmt::format("{}{:.1f},{:.1f}", pen_down ? " L" : (d.empty() ? "M" : " M"), px(x), py(y));
      pen_down = true;
      ++n;
      if (s.markers)
        dots += fmt::format("<circle class=\"marker\" data-series=\"{}\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" "
                            "fill=\"{}\"/>\n", attr(s.name), px(x), py(y), attr(s.color));
    }
    out += fmt::format("<path class=\"series\" data-series=\"{}\" data-points=\"{}\" d=\"{}\" fill=\"none\" "
                       "stroke=\"{}\" stroke-width=\"1.6\"{} stroke-linejoin=\"round\"/>\n",
                       attr(s.name), n, d, attr(s.color), s.dashed ? " stroke-dasharray=\"6 4\"" : "");
    out += dots;
  }

  double ly = kPlotHeight + 4;
  auto legend = [&](const std::string& name, const std::string& color, const char* dash) {
    out += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\"{}/>"
                       "<text x=\"{}\" y=\"{:.1f}\">{}</text>\n",
                       kLeft, kLeft + 26, ly, ly, attr(color), dash, kLeft + 32, ly + 4, escape_html(name));
    ly += kLegendRow;
  };
  for (const auto& s : c.series) legend(s.name, s.color, s.dashed ? " stroke-dasharray=\"6 4\"" : "");
  for (const auto& l : c.levels) legend(l.name, l.color, " stroke-dasharray=\"8 3 2 3\"");
  out += "</svg>\n";
  return out;
}

std::string render_heat_map(const std::string& id, const std::string& title, const std::string& row_label,
                            const std::string& column_label, const std::vector<std::vector<int64_t>>& counts,
                            const std::vector<std::string>& labels) {
  const size_t n = counts.size();
  const double cell = n > 0 ? std::clamp(440.0 / double(n), 14.0, 40.0) : 40;
  size_t longest = 1;
  for (const auto& l : labels) longest = std::max(longest, l.size());
  const double left = 40 + 7.0 * double(std::min<size_t>(longest, 18)), top = 40;
  const double width = left + cell * double(n) + 20, height = top + cell * double(n) + 60 + 6.0 * double(longest);
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" id=\"{}\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>\n",
      attr(id), width, height, width, height, escape_html(title));
  for (size_t r = 0; r < n; ++r) {
    int64_t row_sum = 0;
    for (int64_t v : counts[r]) row_sum += v;
    const std::string name = r < labels.size() ? labels[r] : std::to_string(r);
    out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 6,
                       top + cell * (double(r) + 0.5) + 4, escape_html(name));
    for (size_t col = 0; col < counts[r].size() && col < n; ++col) {
      const double share = row_sum > 0 ? double(counts[r][col]) / double(row_sum) : 0;
      // White to a deep blue: the diagonal of a good classifier reads at a glance.
      const int red = int(std::lround(255 - share * (255 - 8))), green = int(std::lround(255 - share * (255 - 81))),
                blue = int(std::lround(255 - share * (255 - 156)));
      out += fmt::format("<rect class=\"cell\" data-row=\"{}\" data-col=\"{}\" data-count=\"{}\" x=\"{:.1f}\" "
                         "y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"rgb({},{},{})\" stroke=\"#fff\"/>\n",
                         r, col, counts[r][col], left + cell * double(col), top + cell * double(r), cell, cell, red,
                         green, blue);
      if (cell >= 22)
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"{}\" font-size=\"{}\">{}"
                           "</text>\n", left + cell * (double(col) + 0.5), top + cell * (double(r) + 0.5) + 4,
                           share > 0.5 ? "#fff" : "#222", cell >= 34 ? 10 : 8, counts[r][col]);
    }
  }
  const double bottom = top + cell * double(n);
  for (size_t col = 0; col < n; ++col) {
    const std::string name = col < labels.size() ? labels[col] : std::to_string(col);
    const double x = left + cell * (double(col) + 0.5);
    out += fmt::format("<text transform=\"translate({:.1f} {:.1f}) rotate(-45)\" text-anchor=\"end\">{}</text>\n", x,
                       bottom + 10, escape_html(name));
  }
  out += fmt::format("<text transform=\"translate(12 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     top + cell * double(n) / 2, escape_html(row_label));
  out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     left + cell * double(n) / 2, height - 8, escape_html(column_label));
  out += "</svg>\n";
  return out;
}

}  // namespace bb
