// REINFORCE with a moving-average or RLOO baseline, read top to bottom in ReinforceTrainer::step.
#include "rlhf/trainers/reinforce.h"

#include <algorithm>
#include <cmath>

#include "rlhf/batching.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

const OptionTable<ReinforceConfig> &reinforce_options() {
  using O = ReinforceConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.add("beta", &O::beta, "KL coefficient of r - beta log(pi/pi_ref)", Range::at_least(0))
        .add("kl_estimator", &O::kl_estimator,
             "sequence KL of R = r - beta KL and objective/kl: k1 = log(pi/pi_ref), k3 = the sum over tokens of "
             "r - 1 - log r with r = pi_ref/pi (Schulman 2020; TRL's name)",
             {}, {"k1", "k3"})
        .add("rloo_k", &O::rloo_k, "samples per prompt; >= 2 uses the RLOO leave-one-out baseline", Range::at_least(1))
        .add("baseline_decay", &O::baseline_decay, "moving-average baseline decay (rloo_k = 1)", Range::between(0, 1));
    return t;
  }();
  return t;
}

ReinforceTrainer::ReinforceTrainer(nn::GPT &policy, const nn::GPT &ref, Rewards reward, const nn::Tokenizer &tok,
                                   ReinforceConfig opts)
    : policy_(policy),
      ref_(ref),
      reward_(std::move(reward)),
      tok_(tok),
      o_((reinforce_options().check(opts, "reinforce"), std::move(opts))),
      opt_(policy, o_.optim, o_.loop.steps) {}  // one gradient step per iteration

void ReinforceTrainer::register_state(TrainState &state) {
  state.add("optimizer", opt_).add("baseline", baseline_).add("have_baseline", have_baseline_).add("iter", iter_);
}

Metrics ReinforceTrainer::step(const std::vector<std::string> &prompts) {
  const int64_t k = o_.rloo_k;
  const double T = o_.sampling.temperature;
  policy_.eval();  // dropout off everywhere, also while training (N implementation details)

  // 1-2. Rollout: each prompt k times in consecutive rows (RLOO groups them), scored by the
  //      reward; responses that never ended pay the missing-EOS penalty. [B = |prompts| k]
  last_ = rollout(policy_, tok_, prompts, k, o_.sampling, iteration_seed(o_.seed, (uint64_t)iter_), reward_);
  const nn::GenerationOutput &gen = last_.gen;
  const Tensor &score = last_.scores;

  // 3. log pi_ref (frozen, no graph) and log pi_theta (with graph) of each response token [B, N],
  //    and of each response, their sums [B].
  Tensor ref_logp, ref_logp_sum;
  {
    NoGradGuard ng;
    ref_logp = response_logprobs(ref_, gen, T);
    ref_logp_sum = ref_logp.sum({1});
  }
  Tensor logp = response_logprobs(policy_, gen, T);
  Tensor logp_sum = logp.sum({1});

  // 4. The sequence KL of kl_estimator (TRL): k1 = log pi(y|x)/pi_ref(y|x), or k3 summed over the
  //    response tokens. [B], detached. R = r - beta KL, then the baseline.
  Tensor kl;
  {
    NoGradGuard ng;
    kl = o_.kl_estimator == "k3" ? (kl_k3(logp.detach(), ref_logp) * gen.response_mask).sum({1})
                                 : kl_k1(logp_sum.detach(), ref_logp_sum);
  }
  Tensor R = sequence_rlhf_reward(score, kl, o_.beta);
  const double R_mean = R.mean().item();
  Tensor loss;
  double baseline_used = 0;
  if (k >= 2) {
    loss = reinforce_loss(logp_sum, rloo_advantages(R, k), zeros_like(R));
  } else {
    baseline_used = have_baseline_ ? baseline_ : R_mean;  // the first batch has no history: its own mean
    loss = reinforce_loss(logp_sum, R, full_like(R, baseline_used));
    baseline_ = moving_average_baseline(baseline_used, R_mean, o_.baseline_decay);
    have_baseline_ = true;
  }

  // 5. One gradient step.
  opt_.zero_grad();
  loss.backward();
  optim::Optimization::Stats st = opt_.step(iter_);

  Metrics m;
  {
    NoGradGuard ng;
    m["objective/scores"] = score.mean().item();
    m["objective/kl"] = kl.mean().item();
    m["objective/entropy"] = (-logp_sum.detach()).mean().item();  // TRL: mean of -log pi(y|x)
    m["objective/rlhf_reward"] = R_mean;
    m["loss"] = loss.item();
    m["baseline"] = baseline_used;
    m.merge(rollout_metrics(last_));
    m["grad_norm"] = st.grad_norm;
    m["lr"] = st.lr;
  }
  ++iter_;
  return m;
}

// ---- the command-line trainer ----

Metrics run_reinforce(const ReinforceConfig &cfg, bool quiet) {
  PolicyRun run("reinforce", without_unused_reward_model(cfg.run, cfg.rewards), cfg.sampling.max_new_tokens, cfg.seed,
                cfg.device, quiet);
  ReinforceTrainer tr(*run.sft.model, *run.ref, make_rewards(cfg.rewards, run.rm.get(), "reinforce"),
                      run.sft.tokenizer, cfg);
  return train_on_prompts(run, tr, cfg, reinforce_options(), "objective/rlhf_reward");
}

}  // namespace nanorlhf::rlhf
