// The HTML report: charts are well-formed SVG with every curve, text is escaped, metrics parse.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nn/atomic_file.h"
#include "rlhf/report.h"
#include "rlhf/trainers/pipeline.h"

using namespace nanorlhf::rlhf;

TEST(Report, ChartHasOnePolylinePerCurveAndEscapesText) {
  Chart c{"loss <&>", {{"a", {{0, 1}, {1, 0.5}, {2, 0.25}}}, {"b", {{0, 2}, {2, 1}}}}};
  std::string svg = svg_line_chart(c);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t n = 0, pos = 0;
  while ((pos = svg.find("<polyline", pos)) != std::string::npos) { ++n; ++pos; }
  EXPECT_EQ(n, 2u);
  EXPECT_NE(svg.find("loss &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg_line_chart(Chart{"empty", {}}).find("no data"), std::string::npos);
}

TEST(Report, CurvesFromMetricsAndWholeFile) {
  auto dir = std::filesystem::temp_directory_path() / "nr_report_test";
  std::filesystem::create_directories(dir);
  std::string m = (dir / "metrics.jsonl").string();
  nanorlhf::nn::write_file_atomic(m, "{\"step\":0,\"loss\":2}\n{\"step\":1,\"loss\":1.5,\"acc\":0.5}\nnot json\n");
  auto curves = curves_from_metrics(m, {"loss", "acc", "missing"});
  ASSERT_EQ(curves.size(), 2u);
  EXPECT_EQ(curves[0].points.size(), 2u);
  EXPECT_DOUBLE_EQ(curves[1].points[0].second, 0.5);
  std::string out = (dir / "report.html").string();
  nlohmann::json summary = nlohmann::json::array({{{"stage", "sft"}, {"oracle_score", 1.25}, {"seconds", 3.0}}});
  write_report_html(out, summary, {Chart{"loss", curves}}, {ReportSample{"What <b>?", {{"sft", "x"}, {"ppo", "y"}}}});
  std::ifstream in(out);
  std::string html((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(html.find("<td>sft</td>"), std::string::npos);
  EXPECT_NE(html.find("1.25"), std::string::npos);
  EXPECT_NE(html.find("What &lt;b&gt;?"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// The per-kind win rates: a second table in the HTML and in the printed summary, one column per
// kind seen in any row, blank where a row lacks that kind, and no table when no row has them.
TEST(Report, WinRateByKindTableInHtmlAndText) {
  using nlohmann::json;
  json summary = json::array({{{"stage", "sft"}, {"oracle_score", 2.0}, {"win_rate_vs_sft", 0.5}},
                              {{"stage", "ppo"}, {"oracle_score", 2.5}, {"win_rate_vs_sft", 0.7}, {"win_rate_se", 0.0125},
                               {"win_rate_by_kind", {{"count", 0.25}, {"fact", 0.875}}}},
                              {{"stage", "dpo"}, {"win_rate_by_kind", {{"greet", 0.625}}}}});
  std::string text = summary_table(summary);
  auto at = text.find("win rate vs SFT by prompt kind");
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_NE(text.substr(0, at).find("s.e."), std::string::npos) << text;
  EXPECT_NE(text.substr(0, at).find("0.013"), std::string::npos) << "the standard error sits beside the win rate\n" << text;
  std::string kinds = text.substr(at);
  EXPECT_NE(kinds.find("count"), std::string::npos);
  EXPECT_NE(kinds.find("greet"), std::string::npos);
  EXPECT_NE(kinds.find("0.250"), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("0.875"), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("0.625"), std::string::npos) << kinds;
  EXPECT_EQ(kinds.find("sft"), std::string::npos) << "sft has no per-kind row";
  EXPECT_EQ(summary_table(json::array({summary[0]})).find("by prompt kind"), std::string::npos);

  auto dir = std::filesystem::temp_directory_path() / "nr_report_kinds_test";
  std::filesystem::create_directories(dir);
  std::string out = (dir / "report.html").string();
  write_report_html(out, summary, {}, {});
  std::ifstream in(out);
  std::string html((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(html.find("Win rate vs SFT by prompt kind"), std::string::npos);
  EXPECT_NE(html.find("<th>count</th><th>fact</th><th>greet</th>"), std::string::npos) << html;
  EXPECT_NE(html.find("<tr><td>dpo</td><td></td><td></td><td>0.625"), std::string::npos) << html;
  std::filesystem::remove_all(dir);
}
