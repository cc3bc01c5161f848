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
  for (int64_t i = 0; i < o.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    StepOutput out = step(i);
    if (out.metrics.count("loss"))
      NR_CHECK(std::isfinite(out.metrics.at("loss")), "{} step {}: the loss is {} (training diverged); try a smaller lr",
               loop.task, i + 1, out.metrics.at("loss"));
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
        const bool keep_last = std::find(loop.last_value.begin(), loop.last_value.end(), k) != loop.last_value.end();
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
