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

// The help of every training command's `resume` and `save_every` keys.
inline constexpr const char *kResumeHelp =
    "continue the run in `out` from a checkpoint: latest (also the bare flag --resume) or a checkpoint-N "
    "folder of out; empty = a new run";
inline constexpr const char *kAccumulationHelp =
    "micro-batches per optimizer step: batch_size is cut into this many, same gradient, less memory (TRL's name)";
inline constexpr const char *kSaveEveryHelp =
    "steps between checkpoint-N folders in `out` (model, optimizer, random state, data position) that "
    "`resume` continues from; 0 = none";

// The help of every command's `overwrite` key.
inline constexpr const char *kOverwriteHelp =
    "replace the run already in `out` once this one has finished (without it such a folder is an error)";

// A run folder that never holds files of two runs. Make it only once the inputs are read and
// checked. Into a new or empty folder the run writes directly. A folder that holds a run already
// (config.json, metrics.jsonl or model.safetensors) is an error unless `overwrite`; then the run
// writes into out/.staging-<pid>/ and commit() moves its files in and the old run's out, so a
// run that fails or is killed leaves the old one as it was. Temporaries of killed processes
// (<file>.tmp.<pid>, .staging-<pid>) are removed when a run starts.
// With `resume` ("latest" or a checkpoint-N folder of out) the run continues the unfinished run in
// the folder, where it was writing: in out, or in the staging folder of a killed overwrite.
class RunDir {
 public:
  explicit RunDir(const std::string &path, bool overwrite = false, const std::string &resume = "");
  const std::string &root() const { return root_; }  // where the run writes now (staging or out)
  const std::string &out() const { return out_; }    // the run's folder
  std::string path(const std::string &name) const;  // root/name
  // Swaps the staged files into out (each rename atomic); a no-op for a run written in place.
  void commit();
  // config.json: the full resolved config, written atomically. When resuming, it must be the
  // checkpoint's config but for resume, overwrite and save_every (an error lists the keys that differ).
  void write_config(const nlohmann::json &config);
  // The checkpoint this run resumes from; "" for a run from step 0.
  const std::string &resume_from() const { return resume_; }
  // Replaces metrics.jsonl by the checkpoint's copy and appends from there.
  void restore_metrics(const std::string &checkpoint);
  // Appends one compact JSON object per line to metrics.jsonl and flushes, so a crash loses nothing
  // already logged. The record must be an object with an integer "step".
  void log_metrics(const nlohmann::json &record);
  // Writes a text file in the run directory atomically (samples, reports).
  void write_text(const std::string &name, const std::string &text) const;

 private:
  void open(bool overwrite, const std::string &resume);
  void commit_staged();
  void open_new(bool overwrite);
  void open_for_resume(bool overwrite, const std::string &resume);
  std::string out_, root_, resume_;
  bool staged_ = false;
  std::ofstream metrics_;
};

// Whether `dir` holds a run (config.json, metrics.jsonl or model.safetensors).
bool holds_run(const std::string &dir);

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
