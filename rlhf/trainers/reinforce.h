// REINFORCE for language models (lecture: "RL"; Ahmadian et al. 2024): the whole response is one
// action, R = r(x, y) - beta log(pi/pi_ref) at sequence level, with a moving-average or RLOO baseline.
// Also the pieces every sampling trainer shares: the reward function, the frozen reference, metrics.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/config.h"
#include "rlhf/oracle.h"
#include "rlhf/rollout.h"
#include "rlhf/run_dir.h"
#include "rlhf/trainers/evaluate.h"
#include "rlhf/trainers/pretrain.h"

namespace nanorlhf::rlhf {

using Metrics = std::map<std::string, double>;

// r(x, y) for each response of a rollout: [B]. The training reward is the learned reward model (or
// a toy reward built in a test); never the oracle, which only evaluates.
using RewardFn = std::function<Tensor(const Rollout &)>;
RewardFn reward_model_fn(const nn::ScalarModel &rm);

// How every sampling trainer rolls out and scores (the same temperature is used for sampling and for
// every log-prob: N implementation details).
struct SamplingOptions {
  int64_t max_new_tokens = 24;
  double temperature = 0.7;
  double missing_eos_penalty = 1.0;  // subtracted from the score of a response with no <|eos|>
};

// A frozen copy of `policy`: eval mode (dropout off), no gradients (FORMULAS 7.4).
std::shared_ptr<nn::GPT> frozen_copy(const nn::GPT &policy);
// Throws unless the reward model reads the policy's tokens: same vocab, a context that holds a rollout.
// `what` names the file in the message.
void check_reward_model_fits(const nn::GPTConfig &policy, const nn::GPTConfig &rm, const std::string &what,
                             int64_t rollout_len);

struct ReinforceOptions {
  int64_t batch_size = 32;  // prompts per iteration
  int64_t rloo_k = 1;       // samples per prompt; >= 2 replaces the moving average by the RLOO baseline
  double beta = 0.05;       // KL coefficient
  double baseline_decay = 0.9;
  SamplingOptions sampling;
  OptimConfig optim;
  uint64_t seed = 1;
};

// One REINFORCE run's state: the policy it trains, the frozen reference, the reward, the optimiser
// and the baseline. step() is one iteration: sample, score, one gradient step.
class ReinforceTrainer {
 public:
  ReinforceTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok,
                   ReinforceOptions opts);
  // prompts: batch_size user turns (each sampled rloo_k times). Returns TRL-named metrics.
  Metrics step(const std::vector<std::string> &prompts);
  const Rollout &last_rollout() const { return last_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  RewardFn reward_;
  const nn::Tokenizer &tok_;
  ReinforceOptions o_;
  Optimization opt_;
  double baseline_ = 0;
  bool have_baseline_ = false;
  int64_t iter_ = 0;
  Rollout last_;
};

// ---- the command-line trainers ----

// The config keys every sampling trainer shares: policy, reward_model, prompts, eval_prompts, world,
// out, eval_every, eval_size, max_new_tokens, temperature, missing_eos_penalty, beta, and the
// training keys (steps = iterations, batch_size = prompts per iteration).
std::vector<ConfigKey> sampling_trainer_keys(const std::string &name);

// What a sampling trainer loads from its config and does around its iterations: the policy (SFT
// run), its frozen reference, the reward model, prompts cycled in seeded epochs, the oracle
// evaluation against the SFT model, metrics.jsonl and the final checkpoint.
class SamplingRun {
 public:
  // Keys prompts, reward_model, beta and missing_eos_penalty are optional (DPO has no use for them).
  SamplingRun(const Config &c, const std::string &stage, bool quiet);
  std::vector<std::string> next_prompts(int64_t n);
  void set_iterations(int64_t n);  // when the count is known only after loading (DPO: epochs of pairs)
  // Logs one iteration's metrics (step = iteration + 1) and the progress line.
  void log(int64_t iteration, const Metrics &m, const std::string &headline);
  // Oracle evaluation on the held-out prompts (when `world` and `eval_prompts` are set) with
  // rlhf::evaluate, at the settings of `nanorlhf eval`: logs and returns eval/oracle_reward,
  // eval/ref_oracle_reward, eval/win_rate_vs_sft, eval/kl_to_ref, ...
  Metrics evaluate(int64_t step);
  bool should_evaluate(int64_t iteration) const;  // eval_every > 0 and a multiple, or the last one
  // Final evaluation, samples.txt, then model + tokenizer + config in `out`.
  Metrics finish();

  const Config &c;
  const std::string stage;
  Device device;
  LoadedModel sft;                     // sft.model is the policy, trained in place
  std::shared_ptr<nn::GPT> ref;        // frozen copy of the SFT model
  std::shared_ptr<nn::ScalarModel> rm; // the learned reward (null when reward_model is empty)
  SamplingOptions sampling;
  double beta;
  int64_t iterations, batch_size;
  uint64_t seed;
  OptimConfig optim;
  nlohmann::json resolved;

 private:
  std::vector<std::string> prompts_, eval_prompts_;
  std::optional<Oracle> oracle_;
  EvalOptions eval_opts_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  int64_t epoch_ = 0;
  std::unique_ptr<RunDir> run_;
  std::unique_ptr<Progress> progress_;
  bool quiet_;
};

std::vector<ConfigKey> reinforce_schema();
// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_reinforce(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
