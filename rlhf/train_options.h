// The config keys of the optimizer and of the supervised trainers' shared settings, each bound to
// its member once (rlhf/options.h). Each trainer's options struct writes its own defaults.
#pragma once
#include "nn/optimization.h"
#include "rlhf/options.h"
#include "rlhf/run_dir.h"

namespace nanorlhf::rlhf {

// lr, min_lr_ratio, warmup, schedule, weight_decay, beta1, beta2, grad_clip.
const OptionTable<optim::OptimConfig> &optim_options();

// The keys a supervised trainer's table starts with: seed, steps, batch_size, log_every, the
// optimizer's keys and device. T has members seed, batch_size, device, loop (LoopOptions), optim.
template <class T>
OptionTable<T> training_options() {
  OptionTable<T> t;
  t.add("seed", &T::seed, "random seed: model init, batches, dropout, samples", Range::at_least(0))
      .add("steps", [](T &o) -> auto & { return o.loop.steps; }, "optimizer steps", Range::at_least(1))
      .add("batch_size", &T::batch_size, "sequences per step", Range::at_least(1))
      .add("log_every", [](T &o) -> auto & { return o.loop.log_every; }, "steps between metrics.jsonl records",
           Range::at_least(1))
      .add("save_every", [](T &o) -> auto & { return o.loop.save_every; }, kSaveEveryHelp, Range::at_least(0))
      .add("gradient_accumulation_steps", [](T &o) -> auto & { return o.loop.gradient_accumulation_steps; },
           kAccumulationHelp, Range::at_least(1))
      .include(&T::optim, optim_options())
      .add("device", &T::device, "cpu, cuda or cuda:N");
  return t;
}

}  // namespace nanorlhf::rlhf
