// Run directory files (config.json, metrics.jsonl, text outputs) and the progress line/log.
#include "rlhf/run_dir.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "nn/atomic_file.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;

RunDir::RunDir(const std::string &path, bool append) : root_(path) {
  if (root_.empty()) throw std::runtime_error("run directory: empty path");
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec || !fs::is_directory(root_))
    throw std::runtime_error("run directory '" + root_ + "': cannot create it: " +
                             (ec ? ec.message() : std::string("a file of that name exists")));
  const std::string m = this->path("metrics.jsonl");
  metrics_.open(m, append ? std::ios::app : std::ios::trunc);
  if (!metrics_) throw std::runtime_error("run directory: cannot open '" + m + "' for writing");
}

std::string RunDir::path(const std::string &name) const { return (fs::path(root_) / name).string(); }

void RunDir::write_config(const nlohmann::json &config) const {
  nn::write_file_atomic(path("config.json"), config.dump(2) + "\n");
}

void RunDir::write_text(const std::string &name, const std::string &text) const {
  nn::write_file_atomic(path(name), text);
}

void RunDir::log_metrics(const nlohmann::json &record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
    throw std::invalid_argument("log_metrics: expected a JSON object with an integer \"step\", got " + record.dump());
  // NaN/inf become null in JSON; replace keeps a stray invalid UTF-8 string from failing the run.
  metrics_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  metrics_.flush();
  if (!metrics_) throw std::runtime_error("log_metrics: write to '" + path("metrics.jsonl") + "' failed");
}

// ---- progress -------------------------------------------------------------------------------

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const int64_t t = int64_t(s + 0.5);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
}

Progress::Progress(std::string task, int64_t total, std::FILE *out)
    : task_(std::move(task)), total_(total), out_(out), tty_(out && ::isatty(::fileno(out))) {
  start_ = last_print_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  try {
    done();
  } catch (...) {
  }
}

std::string Progress::line(int64_t step, const std::map<std::string, double> &values, double tps) const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string s = fmt::format("{} {:>{}}/{}", task_, step, std::to_string(total_).size(), total_);
  if (total_ > 0) s += fmt::format(" {:3.0f}%", 100.0 * double(step) / double(total_));
  for (const auto &[k, v] : values) {
    if (k == "lr") s += fmt::format(" | lr {:.2e}", v);
    else s += fmt::format(" | {} {:.4g}", k, v);
  }
  if (tps > 0) s += fmt::format(" | {:.0f} tok/s", tps);
  if (step > 0 && step < total_) s += " | ETA " + format_duration(elapsed / double(step) * double(total_ - step));
  else s += " | " + format_duration(elapsed);
  return s;
}

// A terminal gets one line redrawn at most 10 times a second; a log gets a line every 10% of the
// steps or every 10 seconds, whichever comes first, so CI logs stay short but show life.
void Progress::update(int64_t step, const std::map<std::string, double> &values, double tokens_per_s) {
  if (!out_ || done_) return;
  last_step_ = step;
  last_values_ = values;
  last_tps_ = tokens_per_s;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_) {
    if (since < 0.1 && step < total_) return;
    std::fprintf(out_, "\r\033[K%s", line(step, values, tokens_per_s).c_str());
  } else {
    const int64_t every = std::max<int64_t>(1, total_ / 10);
    const bool due = step / every != last_logged_step_ / every || since >= 10.0 || step == total_;
    if (!due || step == last_logged_step_) return;
    std::fprintf(out_, "%s\n", line(step, values, tokens_per_s).c_str());
    last_logged_step_ = step;
  }
  std::fflush(out_);
  last_print_ = now;
}

void Progress::done() {
  if (!out_ || done_) return;
  done_ = true;
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s\n", line(last_step_, last_values_, last_tps_).c_str());
  } else if (last_logged_step_ != last_step_) {
    std::fprintf(out_, "%s\n", line(last_step_, last_values_, last_tps_).c_str());
  }
  std::fflush(out_);
}

}  // namespace nanorlhf::rlhf
