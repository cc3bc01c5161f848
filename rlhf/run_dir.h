// A run directory (config.json, metrics.jsonl, checkpoints, samples) and the progress display of
// long work: a live line on a terminal, plain log lines otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace nanorlhf::rlhf {

// One step's metrics by TRL's names ("loss", "rewards/accuracies", "objective/kl", ...).
using Metrics = std::map<std::string, double>;

class RunDir {
 public:
  // Creates the folder. A fresh run truncates metrics.jsonl; append = true keeps it (resuming).
  explicit RunDir(const std::string &path, bool append = false);
  const std::string &root() const { return root_; }
  std::string path(const std::string &name) const;  // root/name
  // config.json: the full resolved config, written atomically.
  void write_config(const nlohmann::json &config) const;
  // Appends one compact JSON object per line to metrics.jsonl and flushes, so a crash loses nothing
  // already logged. The record must be an object with an integer "step".
  void log_metrics(const nlohmann::json &record);
  // Writes a text file in the run directory atomically (samples, reports).
  void write_text(const std::string &name, const std::string &text) const;

 private:
  std::string root_;
  std::ofstream metrics_;
};

class Progress {
 public:
  // total steps of `task`; out defaults to stderr, live line only when it is a terminal.
  Progress(std::string task, int64_t total, std::FILE *out = stderr);
  ~Progress();
  // `step` steps are done (1..total). values are shown in order of the map ("loss", "lr", ...).
  void update(int64_t step, const std::map<std::string, double> &values, double tokens_per_s = 0);
  // Final line with the total time; called by the destructor if not called before.
  void done();
  bool is_terminal() const { return tty_; }

 private:
  std::string line(int64_t step, const std::map<std::string, double> &values, double tokens_per_s) const;
  std::string task_;
  int64_t total_, last_step_ = 0, last_logged_step_ = 0;
  std::FILE *out_;
  bool tty_, done_ = false;
  std::map<std::string, double> last_values_;
  double last_tps_ = 0;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// "1h02m", "3m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace nanorlhf::rlhf
