// What every trainer that starts from the SFT policy loads and does around its steps: the policy
// (trained in place), its frozen reference, the reward model, the training prompts in seeded
// epochs, the oracle evaluation against the SFT model, the run directory and the final checkpoint.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/optimization.h"
#include "rlhf/batching.h"
#include "rlhf/checkpoints.h"
#include "rlhf/options.h"
#include "rlhf/oracle.h"
#include "rlhf/rewards.h"
#include "rlhf/rollout.h"
#include "rlhf/run_dir.h"
#include "rlhf/evaluation.h"
#include "rlhf/train_options.h"
#include "rlhf/train_state.h"
#include "rlhf/training_loop.h"

namespace nanorlhf::rlhf {

struct PolicyRunOptions {
  std::string policy = "runs/sft";        // the initial policy and the frozen reference
  std::string reward_model = "runs/rm";   // the training reward
  std::string prompts = "data/prompts.jsonl";
  std::string eval_prompts = "data/eval_prompts.jsonl";
  std::string world = "data";             // the oracle's world; evaluation only
  std::string out;
  bool overwrite = false;
  std::string resume = "";  // "" = a new run; latest or a checkpoint-N folder of out
  int64_t eval_size = 128;                // held-out prompts evaluated; 0 = all
  EvalOptions eval = {};                  // the oracle evaluation, at the settings of `nanorlhf eval`
};

// policy, reward_model, prompts, eval_prompts, world, out, eval_size, eval_max_new_tokens,
// eval_temperature, eval_seed.
const OptionTable<PolicyRunOptions> &policy_run_options();
// max_new_tokens, temperature, missing_eos_penalty.
const OptionTable<SamplingOptions> &sampling_options();
// o without its reward model when the rewards do not name it (reward_funcs=verifier needs none).
PolicyRunOptions without_unused_reward_model(PolicyRunOptions o, const RewardOptions &rewards);
// The optimizer defaults of fine-tuning a policy from SFT: no weight decay, no warm-up, constant lr.
optim::OptimConfig policy_optim(double lr);

// The keys every policy trainer's table starts with: the run's paths and evaluation, seed,
// steps/log_every/eval_every, batch_size (prompts per iteration), the optimizer, device, the
// sampling keys when T samples (has a `sampling` member) and reward_funcs / reward_weights when T
// takes a choice of rewards (has a `rewards` member).
template <class T>
OptionTable<T> policy_trainer_options() {
  OptionTable<T> t;
  t.include(&T::run, policy_run_options())
      .add("seed", &T::seed, "random seed: samples, prompt order, dropout", Range::at_least(0))
      .add("steps", [](T &o) -> auto & { return o.loop.steps; }, "iterations (rollout batches)", Range::at_least(1))
      .add("batch_size", &T::batch_size, "prompts per iteration", Range::at_least(1))
      .add("log_every", [](T &o) -> auto & { return o.loop.log_every; }, "iterations between metrics.jsonl records",
           Range::at_least(1))
      .add("eval_every", [](T &o) -> auto & { return o.loop.eval_every; },
           "iterations between oracle evaluations; 0 = at the end only", Range::at_least(0))
      .add("save_every", [](T &o) -> auto & { return o.loop.save_every; }, kSaveEveryHelp, Range::at_least(0))
      .add("gradient_accumulation_steps", [](T &o) -> auto & { return o.loop.gradient_accumulation_steps; },
           kAccumulationHelp, Range::at_least(1))
      .include(&T::optim, optim_options())
      .add("device", &T::device, "cpu, cuda or cuda:N");
  if constexpr (requires { &T::sampling; }) t.include(&T::sampling, sampling_options());  // DPO samples nothing
  if constexpr (requires { &T::rewards; }) t.include(&T::rewards, reward_funcs_options());
  return t;
}

class PolicyRun {
 public:
  // Loads the policy (and its frozen copy as the reference), the reward model when
  // o.reward_model is set, the prompts when o.prompts is set (each must leave room for
  // max_new_tokens), the oracle and held-out prompts when o.world and o.eval_prompts are set.
  PolicyRun(const std::string &stage, const PolicyRunOptions &o, int64_t max_new_tokens, uint64_t seed,
            const std::string &device, bool quiet);
  // A frozen reference other than the initial policy (run directory `dir`), also the evaluation's
  // baseline; it must read the policy's tokens (an error names both configs otherwise).
  void use_reference(const std::string &dir);
  // Creates the run directory and writes config.json: call once every input is loaded and checked.
  RunDir &begin(nlohmann::json resolved);
  std::vector<std::string> next_prompts(int64_t n);
  // Oracle evaluation on the held-out prompts with rlhf::evaluate: logs and returns
  // eval/oracle_reward, eval/ref_oracle_reward, eval/win_rate_vs_sft, eval/kl_to_ref, ...
  // (empty without an oracle).
  Metrics evaluate(int64_t step);
  // Final evaluation, samples.txt, then model + tokenizer + config in `out`.
  Metrics finish(int64_t steps);
  // The loop's settings for this run: its task name, the shown metrics, quiet, the state.
  TrainingLoop loop(const LoopOptions &o, const std::string &headline);

  const std::string stage;
  const PolicyRunOptions options;
  Device device;
  LoadedModel sft;                      // sft.model is the policy, trained in place
  std::shared_ptr<nn::GPT> ref;         // frozen copy of the SFT model
  std::shared_ptr<nn::ScalarModel> rm;  // the learned reward (null when reward_model is empty)
  int64_t longest_prompt = 0;           // tokens, with the chat template
  TrainState state;                     // the policy and the prompt order; a trainer adds its own

 private:
  std::vector<std::string> prompts_, eval_prompts_;
  std::optional<Oracle> oracle_;
  std::optional<EpochSampler> sampler_;
  std::unique_ptr<RunDir> run_;
  nlohmann::json resolved_;
  bool quiet_;
};

// The run of a trainer whose step takes a batch of prompts (REINFORCE, PPO, RAFT): config.json,
// then cfg.loop.steps iterations of tr.step(the next batch_size prompts) in the training loop
// with the oracle evaluation every eval_every, then the final evaluation and the checkpoint.
template <class Trainer, class T>
Metrics train_on_prompts(PolicyRun &run, Trainer &tr, const T &cfg, const OptionTable<T> &options,
                         const std::string &headline) {
  RunDir &dir = run.begin(options.resolved(cfg));
  tr.register_state(run.state);
  run_training_loop(run.loop(cfg.loop, headline), dir,
                    [&](int64_t) { return StepOutput{tr.step(run.next_prompts(cfg.batch_size)), 0}; },
                    [&](int64_t step) { run.evaluate(step); });
  return run.finish(cfg.loop.steps);
}

// The run of a trainer whose step takes a batch of dataset rows (DPO, KTO): config.json, then
// tr.total_steps() steps over seeded epochs of its tr.size() rows (the short-batch rule given),
// the evaluation every eval_every, then the final evaluation and the checkpoint.
template <class Trainer, class T>
Metrics train_on_dataset(PolicyRun &run, Trainer &tr, const T &cfg, const OptionTable<T> &options,
                         const std::string &headline, ShortBatch short_batch) {
  RunDir &dir = run.begin(options.resolved(cfg));
  LoopOptions lo = cfg.loop;
  lo.steps = tr.total_steps();
  EpochSampler batches(tr.size(), (size_t)cfg.batch_size, cfg.seed, short_batch);
  run.state.add("batches", batches);
  tr.register_state(run.state);
  run_training_loop(run.loop(lo, headline), dir, [&](int64_t step) {
    Metrics m = tr.step(batches.next());
    m["epoch"] = (double)(step + 1) / (double)tr.steps_per_epoch();
    return StepOutput{m, 0};
  }, [&](int64_t step) { run.evaluate(step); });
  return run.finish(lo.steps);
}

}  // namespace nanorlhf::rlhf
