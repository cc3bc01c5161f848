// Run directory files (config.json, metrics.jsonl, text outputs) and the progress line/log.
#include "rlhf/run_dir.h"

#include "nn/distributed.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <set>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;

namespace {

bool process_alive(long pid) { return pid > 0 && (::kill((pid_t)pid, 0) == 0 || errno == EPERM); }

// The pid at the end of "<name>.tmp.<pid>" or ".staging-<pid>", or -1.
long owner_pid(const std::string &name) {
  size_t at = name.rfind(".tmp.");
  size_t len = 5;
  if (name.rfind(".staging-", 0) == 0) at = 0, len = 9;
  if (at == std::string::npos || at + len >= name.size()) return -1;
  const std::string digits = name.substr(at + len);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit((unsigned char)c); })) return -1;
  return std::stol(digits);
}

// Temporaries and staging folders of processes that no longer run (killed during a save).
void remove_strays(const std::string &dir) {
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec)) {
    const long pid = owner_pid(e.path().filename().string());
    if (pid > 0 && pid != (long)::getpid() && !process_alive(pid)) fs::remove_all(e.path(), ec);
  }
}

// The staging folder a killed `overwrite` run left with checkpoints in it (the newest), or "".
std::string dead_staging_with_checkpoints(const std::string &out) {
  std::string best;
  fs::file_time_type newest{};
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    const long pid = owner_pid(name);
    if (name.rfind(".staging-", 0) != 0 || pid <= 0 || process_alive(pid)) continue;
    if (latest_checkpoint(e.path().string()).empty()) continue;
    const auto t = fs::last_write_time(e.path(), ec);
    if (best.empty() || t > newest) best = e.path().string(), newest = t;
  }
  return best;
}

std::string checkpoints_in(const std::string &dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec))
    if (checkpoint_step(e.path().string()) >= 0) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

bool holds_run(const std::string &dir) {
  for (const char *f : {"config.json", "metrics.jsonl", "model.safetensors"})
    if (fs::exists(fs::path(dir) / f)) return true;
  return false;
}

// Data parallelism: rank 0 alone opens, writes and commits the folder; the other ranks learn where
// it writes and which checkpoint it resumes from, and wait for its commit.
RunDir::RunDir(const std::string &path, bool overwrite, const std::string &resume) : out_(path), root_(path) {
  if (out_.empty()) throw std::runtime_error("run directory: empty path");
  if (dist::is_main()) open(overwrite, resume);
  root_ = dist::broadcast(root_);
  resume_ = dist::broadcast(resume_);
}

void RunDir::open(bool overwrite, const std::string &resume) {
  std::error_code ec;
  fs::create_directories(out_, ec);
  if (ec || !fs::is_directory(out_))
    throw std::runtime_error("run directory '" + out_ + "': cannot create it: " +
                             (ec ? ec.message() : std::string("a file of that name exists")));
  if (!resume.empty()) {
    open_for_resume(overwrite, resume);
  } else {
    remove_strays(out_);
    open_new(overwrite);
  }
  if (!resume_.empty()) return;  // restore_metrics opens it, once the checkpoint is found to fit
  const std::string m = this->path("metrics.jsonl");
  metrics_.open(m, std::ios::trunc);
  if (!metrics_) throw std::runtime_error("run directory: cannot open '" + m + "' for writing");
}

void RunDir::open_for_resume(bool overwrite, const std::string &resume) {
  const std::string staging = dead_staging_with_checkpoints(out_);
  if (!staging.empty()) {  // a killed overwrite: continue in its staging folder, now ours
    staged_ = true;
    root_ = (fs::path(out_) / (".staging-" + std::to_string(::getpid()))).string();
    fs::rename(staging, root_);
  }
  remove_strays(out_);
  if (!staged_ && fs::exists(fs::path(out_) / "model.safetensors")) {
    if (!overwrite)
      throw std::runtime_error("resume: '" + out_ + "' holds a finished run (model.safetensors) and no unfinished "
                               "one; nothing to resume (give overwrite to train it again)");
    open_new(overwrite);  // a killed overwrite that saved no checkpoint: start it again
  }
  if (resume == "latest") {
    resume_ = latest_checkpoint(root_);
    if (resume_.empty() && holds_run(root_))
      std::fprintf(stderr, "resume: no checkpoint in '%s' yet: the run starts from step 0\n", out_.c_str());
    return;
  }
  const fs::path given(resume);
  const fs::path found = fs::path(root_) / given.filename();
  std::error_code ec;
  const bool of_out = fs::equivalent(given.parent_path().empty() ? "." : given.parent_path(), out_, ec) ||
                      given.parent_path().filename().string().rfind(".staging-", 0) == 0;
  if (checkpoint_step(resume) < 0 || !of_out || !fs::exists(found / "trainer_state.json"))
    throw std::runtime_error(fmt::format("resume: '{}' is not a checkpoint of the run in '{}' (its checkpoints: {}); "
                                         "give latest or one of them", resume, out_, checkpoints_in(root_)));
  resume_ = found.string();
}

void RunDir::open_new(bool overwrite) {
  std::error_code ec;
  if (holds_run(out_)) {
    if (!overwrite)
      throw std::runtime_error("run directory '" + out_ + "' holds a run already (config.json, metrics.jsonl or "
                               "model.safetensors); give --overwrite to replace it once this run has finished, or "
                               "another out");
    staged_ = true;
    root_ = (fs::path(out_) / (".staging-" + std::to_string(::getpid()))).string();
    fs::remove_all(root_, ec);
    fs::create_directories(root_, ec);
    if (ec) throw std::runtime_error("run directory: cannot create '" + root_ + "': " + ec.message());
  }
}

void RunDir::commit() {
  if (dist::world_size() > 1) {
    if (dist::is_main()) commit_staged();
    dist::barrier();  // the other ranks may read the committed run next (a pipeline's next stage)
    root_ = out_;
    return;
  }
  commit_staged();
}

void RunDir::commit_staged() {
  if (!staged_) return;
  metrics_.close();
  std::set<std::string> fresh;
  for (const auto &e : fs::directory_iterator(root_)) fresh.insert(e.path().filename().string());
  // The old run's files that the new run does not write go first, so the folder never mixes runs
  // in the files a reader trusts; then each new file replaces its old one by an atomic rename.
  for (const auto &e : fs::directory_iterator(out_)) {
    const std::string name = e.path().filename().string();
    if ((e.is_regular_file() || checkpoint_step(name) >= 0) && !fresh.count(name) && owner_pid(name) < 0)
      fs::remove_all(e.path());
  }
  for (const std::string &name : fresh) {
    const fs::path dst = fs::path(out_) / name;
    if (fs::is_directory(dst) && fs::is_directory(fs::path(root_) / name)) fs::remove_all(dst);
    fs::rename(fs::path(root_) / name, dst);
  }
  fs::remove_all(root_);
  root_ = out_;
  staged_ = false;
}

std::string RunDir::path(const std::string &name) const { return (fs::path(root_) / name).string(); }

void RunDir::write_config(const nlohmann::json &config) {
  if (!resume_.empty()) {  // the same run, or the checkpoint means nothing
    const nlohmann::json saved = nlohmann::json::parse(nn::read_file((fs::path(resume_) / "config.json").string()));
    std::vector<std::string> differ;
    for (const auto &[k, v] : config.items())
      if (k != "resume" && k != "overwrite" && k != "save_every" && (!saved.contains(k) || saved[k] != v))
        differ.push_back(fmt::format("{} = {} (checkpoint: {})", k, v.dump(), saved.contains(k) ? saved[k].dump() : "absent"));
    if (!differ.empty())
      throw std::runtime_error(fmt::format("resume: the config differs from {}'s: {}; resume with the checkpoint's "
                                           "settings, or start a new run", resume_, fmt::join(differ, "; ")));
  }
  nn::write_file_atomic(path("config.json"), config.dump(2) + "\n");
}

void RunDir::restore_metrics(const std::string &checkpoint) {
  if (!dist::is_main()) return;
  const std::string m = path("metrics.jsonl"), copy = (fs::path(checkpoint) / "metrics.jsonl").string();
  metrics_.close();
  nn::write_file_atomic(m, fs::exists(copy) ? nn::read_file(copy) : std::string());
  metrics_.open(m, std::ios::app);
  if (!metrics_) throw std::runtime_error("run directory: cannot open '" + m + "' for appending");
}

void RunDir::write_text(const std::string &name, const std::string &text) const {
  nn::write_file_atomic(path(name), text);
}

void RunDir::log_metrics(const nlohmann::json &record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
    throw std::invalid_argument("log_metrics: expected a JSON object with an integer \"step\", got " + record.dump());
  if (!dist::is_main()) return;
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
    : task_(std::move(task)), total_(total), out_(dist::is_main() ? out : nullptr), tty_(out_ && ::isatty(::fileno(out_))) {
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
