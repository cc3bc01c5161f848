// The pipeline's self-contained HTML report: a summary table, inline SVG charts of every stage's
// curves, and sample responses before and after alignment.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanorlhf::rlhf {

struct Curve {
  std::string label;
  std::vector<std::pair<double, double>> points;  // (step, value)
};

struct Chart {
  std::string title;
  std::vector<Curve> curves;
  std::string x_label = "step";  // the x of the points: any increasing quantity (sqrt(KL) in the overoptimisation study)
};

// One polyline chart as an <svg> element (axes with min/max ticks, a legend).
std::string svg_line_chart(const Chart &chart, int width = 460, int height = 240);

// Curves of the given metric keys read from a metrics.jsonl file (x = "step").
std::vector<Curve> curves_from_metrics(const std::string &metrics_jsonl, const std::vector<std::string> &keys);

struct ReportSample {
  std::string prompt;
  std::vector<std::pair<std::string, std::string>> responses;  // (model, response)
};

// summary: the list of stage rows (as in summary.json); charts and samples as above. columns: the
// summary table's keys; empty = the pipeline's (stage, oracle_score, win_rate_vs_sft, ...).
void write_report_html(const std::string &path, const nlohmann::json &summary, const std::vector<Chart> &charts,
                       const std::vector<ReportSample> &samples, const std::string &title = "nanorlhf pipeline report",
                       const std::vector<std::string> &columns = {});

std::string html_escape(const std::string &s);

}  // namespace nanorlhf::rlhf
