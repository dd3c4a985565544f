// The report's SVG writer (src/cli/svg_chart.cpp, compiled into the test binary): round
// ticks, gaps at non-finite values, escaping, and a heat map of every cell.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cli/svg_chart.h"

namespace bb {
namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(SvgChart, TicksAreRoundAndCoverTheRange) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(1.3, 4.9, 4), (std::vector<double>{1, 2, 3, 4, 5}));
  const auto t = nice_ticks(0.0001, 0.0021, 5);
  EXPECT_DOUBLE_EQ(t.front(), 0);
  EXPECT_NEAR(t.back(), 0.0025, 1e-12);
  EXPECT_EQ(format_tick(0.30000000000000004, AxisUnits::Plain, 0.1), "0.3");
  EXPECT_EQ(format_tick(-1e-18, AxisUnits::Plain, 0.5), "0.0");  // never "-0.0"
  EXPECT_EQ(format_tick(1.5e6, AxisUnits::Si, 5e5), "1.5M");
  EXPECT_EQ(format_tick(double(96 << 20), AxisUnits::Bytes, double(16 << 20)), "96 MiB");
  EXPECT_EQ(format_tick(2e-5, AxisUnits::Plain, 1e-5), "2.00e-05");
}

TEST(SvgChart, EachFinitePointIsOneCommandAndNaNLeavesAGap) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  LineChart c{.id = "c", .title = "T <&>", .x_label = "x", .y_label = "y"};
  c.series.push_back({"a \"quoted\" name", "#123456", {{1, 1}, {2, nan}, {3, 2}, {4, 3}}});
  c.series.push_back({"dots", "#654321", {{1, 5}, {4, 6}}, true, true});
  const std::string svg = render_line_chart(c);
  EXPECT_NE(svg.find("data-series=\"a &quot;quoted&quot; name\" data-points=\"3\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("T &lt;&amp;&gt;"), std::string::npos);
  // The gap: the line restarts with M after the NaN.
  const size_t d = svg.find(" d=\"M");
  ASSERT_NE(d, std::string::npos);
  const std::string path = svg.substr(d, svg.find('"', d + 4) - d);
  EXPECT_EQ(count(path, "M"), 2) << path;
  EXPECT_EQ(count(path, "L"), 1) << path;
  EXPECT_EQ(count(svg, "class=\"marker\""), 2);
  EXPECT_EQ(count(svg, "stroke-dasharray=\"6 4\""), 2);  // the dashed series and its legend
}

TEST(SvgChart, AChartWithoutDataSaysSo) {
  LineChart c{.id = "empty", .title = "nothing", .x_label = "x", .y_label = "y"};
  c.series.push_back({"none", "#000000", {}});
  const std::string svg = render_line_chart(c);
  EXPECT_NE(svg.find("no data yet"), std::string::npos);
  EXPECT_NE(svg.find("data-points=\"0\""), std::string::npos);
}

TEST(SvgChart, HeatMapHasACellPerCountShadedByRowShare) {
  const std::string svg = render_heat_map("h", "confusion", "true", "predicted", {{9, 1}, {0, 0}}, {"cat", "dog"});
  EXPECT_EQ(count(svg, "class=\"cell\""), 4);
  EXPECT_NE(svg.find("data-count=\"9\""), std::string::npos);
  EXPECT_NE(svg.find(">dog<"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"rgb(255,255,255)\""), std::string::npos);  // the empty row stays white
}

}  // namespace
}  // namespace bb
