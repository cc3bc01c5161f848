// The training loop: windows of step metrics, logging cadence, progress and evaluation hooks.
#include "rlhf/training_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "rlhf/kill_point.h"
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
  int64_t skipped = 0, start = 0;
  auto metrics_json = [](const Metrics &m) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto &[k, v] : m) j[k] = exact_json(v);
    return j;
  };
  auto metrics_from = [](const nlohmann::json &j) {
    Metrics m;
    for (const auto &[k, v] : j.items()) m[k] = exact_double(v);
    return m;
  };
  if (!run.resume_from().empty()) {
    NR_CHECK(loop.state, "{}: this command keeps no training state and cannot resume", loop.task);
    const nlohmann::json l = loop.state->load(run.resume_from());
    run.restore_metrics(run.resume_from());
    start = l.at("step").get<int64_t>();
    skipped = l.at("skipped_steps").get<int64_t>();
    window_n = l.at("window_n").get<int64_t>();
    window_tokens = l.at("window_tokens").get<int64_t>();
    sum = metrics_from(l.at("sum"));
    last = metrics_from(l.at("last"));
    NR_CHECK(start < o.steps, "resume: {} is at step {} of {}", run.resume_from(), start, o.steps);
    if (!loop.quiet)
      std::fprintf(stderr, "%s: resuming from %s (step %lld of %lld)\n", loop.task.c_str(), run.resume_from().c_str(),
                   (long long)start, (long long)o.steps);
  }
  for (int64_t i = start; i < o.steps; ++i) {
    kill_point("step", i + 1, loop.task);
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
    if (loop.state && o.save_every > 0 && (i + 1) % o.save_every == 0 && i + 1 < o.steps) {
      const nlohmann::json state = {{"step", i + 1},         {"skipped_steps", skipped},
                                    {"window_n", window_n},  {"window_tokens", window_tokens},
                                    {"sum", metrics_json(sum)}, {"last", metrics_json(last)}};
      loop.state->save(run.path(fmt::format("checkpoint-{}", i + 1)), state,
                       {run.path("config.json"), run.path("metrics.jsonl")});
    }
  }
  progress.done();
}

}  // namespace nanorlhf::rlhf
