// The one training loop every trainer runs: steps, the progress line, metrics averaged over a
// logging window into metrics.jsonl, tokens/s, periodic evaluation. A trainer supplies its step.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "rlhf/run_dir.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

struct LoopOptions {
  int64_t steps = 1000;     // optimizer steps, or iterations of a sampling trainer
  int64_t log_every = 10;   // steps between metrics.jsonl records (each the mean over its window)
  int64_t eval_every = 0;   // steps between evaluations; 0 = at the end only
  int64_t save_every = 0;   // steps between checkpoint-N folders (resume); 0 = none
  // Micro-batches each optimizer step's batch is cut into (rlhf/gradient_accumulation.h); the
  // loop does not read it, the trainers' steps do.
  int64_t gradient_accumulation_steps = 1;
};

struct StepOutput {
  Metrics metrics;
  int64_t tokens = 0;  // tokens the step processed (for tokens_per_s); 0 = not reported
};

struct TrainingLoop {
  std::string task;                     // the progress line's name: "sft", "dpo", ...
  LoopOptions options;
  std::vector<std::string> shown;       // metrics shown on the progress line, in this order
  std::vector<std::string> last_value;  // metrics logged as their last value, not the window mean ("lr")
  bool quiet = false;                   // no progress output (tests)
  TrainState *state = nullptr;          // what checkpoint-N holds besides the loop's own state
};

// Runs step(0) .. step(steps - 1). A non-finite "loss" is an error naming the step (the run
// diverged). Every log_every steps, and at the last, one record {"step", means..., tokens_per_s}
// goes to run's metrics.jsonl; evaluate(step) runs every eval_every steps before the last (the
// final evaluation is the trainer's, after the loop). Every save_every steps before the last, after
// the evaluation, loop.state and the loop's windows go to run/checkpoint-N; a run resuming from
// checkpoint-N (run.resume_from()) loads them and continues at step N.
void run_training_loop(const TrainingLoop &loop, RunDir &run, const std::function<StepOutput(int64_t)> &step,
                       const std::function<void(int64_t)> &evaluate = nullptr);

}  // namespace nanorlhf::rlhf
