// report.html: everything inline (CSS and SVG), so the file opens anywhere without a server.
#include "rlhf/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

std::string html_escape(const std::string &s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

namespace {
const char *kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
std::string num(double v) {
  if (std::abs(v) >= 1000 || (std::abs(v) < 0.01 && v != 0)) return fmt::format("{:.2e}", v);
  return fmt::format("{:.3g}", v);
}
}  // namespace

std::string svg_line_chart(const Chart &chart, int W, int H) {
  const int L = 52, R = 12, T = 26, B = 30;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (auto &c : chart.curves)
    for (auto [x, y] : c.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x); x1 = std::max(x1, x); y0 = std::min(y0, y); y1 = std::max(y1, y);
    }
  std::ostringstream s;
  s << fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="11">)",
                   W, H, W, H);
  s << fmt::format(R"(<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>)", L, html_escape(chart.title));
  if (x0 > x1) {
    s << fmt::format(R"(<text x="{}" y="{}">no data</text></svg>)", L, H / 2);
    return s.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) { y1 += 0.5; y0 -= 0.5; }
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  s << fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)", L, T, W - L - R, H - T - B);
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", L - 4, T + 8, num(y1));
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", L - 4, H - B, num(y0));
  s << fmt::format(R"(<text x="{}" y="{}">{}</text>)", L, H - B + 14, num(x0));
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", W - R, H - B + 14, num(x1));
  s << fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", (L + W - R) / 2, H - 4,
                   html_escape(chart.x_label));
  for (size_t i = 0; i < chart.curves.size(); ++i) {
    const auto &c = chart.curves[i];
    const char *col = kColors[i % 6];
    std::string pts;
    for (auto [x, y] : c.points)
      if (std::isfinite(y)) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    s << fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>)", col, pts);
    s << fmt::format(R"(<text x="{}" y="{}" fill="{}">{}</text>)", L + 6, T + 14 + 13 * i, col, html_escape(c.label));
  }
  s << "</svg>";
  return s.str();
}

std::vector<Curve> curves_from_metrics(const std::string &path, const std::vector<std::string> &keys) {
  std::vector<Curve> out;
  for (auto &k : keys) out.push_back({k, {}});
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try { j = nlohmann::json::parse(line); } catch (...) { continue; }
    if (!j.contains("step")) continue;
    double step = j["step"].get<double>();
    for (size_t i = 0; i < keys.size(); ++i)
      if (j.contains(keys[i]) && j[keys[i]].is_number()) out[i].points.emplace_back(step, j[keys[i]].get<double>());
  }
  out.erase(std::remove_if(out.begin(), out.end(), [](const Curve &c) { return c.points.empty(); }), out.end());
  return out;
}

void write_report_html(const std::string &path, const nlohmann::json &summary, const std::vector<Chart> &charts,
                       const std::vector<ReportSample> &samples, const std::string &title,
                       const std::vector<std::string> &columns) {
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << html_escape(title) << "</title><style>"
    << "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    << "th{background:#f3f3f3}.charts{display:flex;flex-wrap:wrap;gap:12px}code{white-space:pre-wrap}"
    << "</style></head><body><h1>" << html_escape(title) << "</h1>";
  // Summary table: one row per stage, the columns of summary.json.
  std::vector<std::string> cols = columns;
  if (cols.empty()) cols = {"stage", "oracle_score", "win_rate_vs_sft", "win_rate_se", "kl_to_sft", "rm_accuracy", "seconds"};
  h << "<h2>Summary</h2><table><tr>";
  for (auto &c : cols) h << "<th>" << c << "</th>";
  h << "</tr>";
  for (auto &row : summary) {
    h << "<tr>";
    for (auto &c : cols) {
      h << "<td>";
      if (row.contains(c) && !row[c].is_null()) h << html_escape(row[c].is_string() ? row[c].get<std::string>() : num(row[c].get<double>()));
      h << "</td>";
    }
    h << "</tr>";
  }
  h << "</table>";
  // Win rate per prompt kind, for the rows that carry it.
  std::vector<std::string> kinds;
  for (auto &row : summary)
    if (row.contains("win_rate_by_kind"))
      for (auto &[k, v] : row["win_rate_by_kind"].items())
        if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  if (!kinds.empty()) {
    h << "<h2>Win rate vs SFT by prompt kind</h2><table><tr><th>stage</th>";
    for (auto &k : kinds) h << "<th>" << html_escape(k) << "</th>";
    h << "</tr>";
    for (auto &row : summary) {
      if (!row.contains("win_rate_by_kind")) continue;
      h << "<tr><td>" << html_escape(row["stage"].get<std::string>()) << "</td>";
      for (auto &k : kinds) {
        const auto &w = row["win_rate_by_kind"];
        h << "<td>" << (w.contains(k) ? num(w[k].get<double>()) : std::string()) << "</td>";
      }
      h << "</tr>";
    }
    h << "</table>";
  }
  h << "<h2>Training curves</h2><div class=\"charts\">";
  for (auto &c : charts) h << svg_line_chart(c);
  h << "</div><h2>Samples on held-out prompts</h2><table><tr><th>prompt</th>";
  std::vector<std::string> models;
  if (!samples.empty())
    for (auto &[m, r] : samples[0].responses) models.push_back(m);
  for (auto &m : models) h << "<th>" << html_escape(m) << "</th>";
  h << "</tr>";
  for (auto &s : samples) {
    h << "<tr><td><code>" << html_escape(s.prompt) << "</code></td>";
    for (auto &[m, r] : s.responses) h << "<td><code>" << html_escape(r) << "</code></td>";
    h << "</tr>";
  }
  h << "</table></body></html>\n";
  nn::write_file_atomic(path, h.str());
}

}  // namespace nanorlhf::rlhf
