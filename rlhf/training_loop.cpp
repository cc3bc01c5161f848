// The training loop: windows of step metrics, logging cadence, progress and evaluation hooks.
#include "rlhf/training_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>

#include "tensor/error.h"

namespace nanorlhf::rlhf {

void run_training_loop(const TrainingLoop &loop, RunDir &run, const std::function<StepOutput(int64_t)> &step,
                       const std::function<void(int64_t)> &evaluate) {
  const LoopOptions &o = loop.options;
  const int64_t log_every = std::max<int64_t>(1, o.log_every);
  Progress progress(loop.task, o.steps, loop.quiet ? nullptr : stderr);
  Metrics sum, last;
  int64_t window_n = 0, window_tokens = 0;
  auto t_log = std::chrono::steady_clock::now();
  int64_t skipped = 0;
  for (int64_t i = 0; i < o.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    StepOutput out = step(i);
    // A non-finite grad_norm that reached here is a step the optimizer skipped (skip_nonfinite);
    // otherwise a non-finite loss stops the run, which saves nothing: `out` keeps what it held.
    const bool was_skipped = out.metrics.count("grad_norm") && !std::isfinite(out.metrics.at("grad_norm"));
    skipped += was_skipped;
    if (out.metrics.count("loss") && !was_skipped)
      NR_CHECK(std::isfinite(out.metrics.at("loss")),
               "{} step {}: the loss is {} (training diverged); the run stops and saves nothing ({} keeps what it "
               "held before; the metrics so far are in {}); try a smaller lr, or skip_nonfinite=true",
               loop.task, i + 1, out.metrics.at("loss"), run.out(), run.path("metrics.jsonl"));
    if (was_skipped) out.metrics.erase("grad_norm"), out.metrics.erase("loss");
    if (skipped > 0) out.metrics["skipped_steps"] = double(skipped);
    for (const auto &[k, v] : out.metrics) sum[k] += v, last[k] = v;
    ++window_n;
    window_tokens += out.tokens;

    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::string, double> shown;
    for (const auto &k : loop.shown)
      if (out.metrics.count(k)) shown[k] = out.metrics.at(k);
    progress.update(i + 1, shown, out.tokens > 0 ? double(out.tokens) / std::max(dt, 1e-9) : 0.0);

    if ((i + 1) % log_every == 0 || i + 1 == o.steps) {
      nlohmann::json rec = {{"step", i + 1}};
      for (const auto &[k, v] : sum) {
        const bool keep_last = k == "skipped_steps" ||
                               std::find(loop.last_value.begin(), loop.last_value.end(), k) != loop.last_value.end();
        rec[k] = keep_last ? last[k] : v / double(window_n);
      }
      if (window_tokens > 0) {
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
        rec["tokens_per_s"] = double(window_tokens) / std::max(secs, 1e-9);
      }
      run.log_metrics(rec);
      sum.clear();
      window_n = window_tokens = 0;
      t_log = std::chrono::steady_clock::now();
    }
    if (evaluate && o.eval_every > 0 && (i + 1) % o.eval_every == 0 && i + 1 < o.steps) evaluate(i + 1);
  }
  progress.done();
}

}  // namespace nanorlhf::rlhf
