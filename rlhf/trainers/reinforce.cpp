// REINFORCE with a moving-average or RLOO baseline, read top to bottom in ReinforceTrainer::step.
#include "rlhf/trainers/reinforce.h"

#include <algorithm>
#include <cmath>

#include "rlhf/batching.h"
#include "rlhf/gradient_accumulation.h"
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
      opt_(policy, o_.optim, o_.loop.steps) {  // one gradient step per iteration
  check_accumulation("reinforce", o_.batch_size * o_.rloo_k, o_.loop.gradient_accumulation_steps,
                     "samples (batch_size x rloo_k)");
}

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

  // 3. log pi_ref and log pi_theta of each response token [B, N] (no graph: the KL and the
  //    metrics), and their sums over each response [B].
  Tensor ref_logp, logp;
  {
    NoGradGuard ng;
    ref_logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(ref_, g, T); });
    logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(policy_, g, T); });
  }
  Tensor ref_logp_sum = ref_logp.sum({1}), logp_sum = logp.sum({1});

  // 4. The sequence KL of kl_estimator (TRL): k1 = log pi(y|x)/pi_ref(y|x), or k3 summed over the
  //    response tokens. [B], detached. R = r - beta KL, then the advantage R - baseline over the
  //    whole batch (RLOO's groups, the moving average).
  Tensor kl = o_.kl_estimator == "k3" ? (kl_k3(logp, ref_logp) * gen.response_mask).sum({1})
                                      : kl_k1(logp_sum, ref_logp_sum);
  Tensor R = sequence_rlhf_reward(score, kl, o_.beta);
  const double R_mean = R.mean().item();
  Tensor advantage;
  double baseline_used = 0;
  if (k >= 2) {
    advantage = rloo_advantages(R, k);
  } else {
    baseline_used = have_baseline_ ? baseline_ : R_mean;  // the first batch has no history: its own mean
    advantage = R - baseline_used;
    baseline_ = moving_average_baseline(baseline_used, R_mean, o_.baseline_decay);
    have_baseline_ = true;
  }

  // 5. One gradient step: the loss, a mean over the responses, micro-batch by micro-batch, each
  //    weighing its share of the responses.
  opt_.zero_grad();
  const int64_t n = gen.sequences.shape()[0];
  AccumulatedMetrics acc;
  for (const std::vector<size_t> &part : micro_batches(index_range(0, (size_t)n), o_.loop.gradient_accumulation_steps)) {
    const std::vector<int64_t> idx(part.begin(), part.end());
    Tensor at = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(advantage.device());
    Tensor a = index_select(advantage, 0, at);
    Tensor loss = reinforce_loss(response_logprobs(policy_, select_rows(gen, idx), T).sum({1}), a, zeros_like(a));
    const double w = share((double)part.size(), (double)n);
    (loss * w).backward();
    acc.add("loss", loss.item(), w);
  }
  optim::Optimization::Stats st = opt_.step(iter_);

  Metrics m;
  {
    NoGradGuard ng;
    m["objective/scores"] = score.mean().item();
    m["objective/kl"] = kl.mean().item();
    m["objective/entropy"] = (-logp_sum).mean().item();  // TRL: mean of -log pi(y|x)
    m["objective/rlhf_reward"] = R_mean;
    m["loss"] = acc.result().at("loss");
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
