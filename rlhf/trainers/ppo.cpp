// PPO, one iteration read top to bottom in PPOTrainer::step: rollout, score, reference and old
// log-probs, KL-shaped rewards, GAE, whitening, then epochs of clipped minibatch updates.
#include "rlhf/trainers/ppo.h"

#include <algorithm>
#include <cmath>

#include "rlhf/batching.h"
#include "rlhf/data.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

void PPOConfig::validate() const {
  NR_CHECK(num_mini_batches <= batch_size, "ppo: num_mini_batches ({}) must be <= batch_size ({})", num_mini_batches,
           batch_size);
}

const OptionTable<PPOConfig> &ppo_options() {
  using O = PPOConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.add("beta", &O::beta, "KL coefficient of r - beta log(pi/pi_ref)", Range::at_least(0))
        .add("kl_estimator", &O::kl_estimator,
             "per-token KL estimator of the reward and objective/kl: k1 = log(pi/pi_ref), k3 = r - 1 - log r with "
             "r = pi_ref/pi (Schulman 2020; TRL's name)",
             {}, {"k1", "k3"})
        .add("num_mini_batches", &O::num_mini_batches, "minibatches per rollout batch per epoch (TRL's name)",
             Range::at_least(1))
        .add("ppo_epochs", &O::ppo_epochs, "passes over each rollout batch", Range::at_least(1))
        .add("cliprange", &O::cliprange, "policy ratio clip epsilon", Range::above(0))
        .add("cliprange_value", &O::cliprange_value, "value clip epsilon", Range::above(0))
        .add("vf_coef", &O::vf_coef, "weight of the value loss in pg + vf_coef * vf", Range::at_least(0))
        .add("gamma", &O::gamma, "discount", Range::between(0, 1))
        .add("lam", &O::lam, "GAE lambda", Range::between(0, 1))
        .add("whiten_rewards", &O::whiten_rewards, "whiten the per-token rewards before GAE (mean kept)")
        .add("adaptive_kl", &O::adaptive_kl, "adapt beta towards target_kl (Ziegler et al. 2019); false = fixed beta")
        .add("target_kl", &O::target_kl, "target sequence KL of the adaptive controller (nats)", Range::above(0))
        .add("kl_horizon", &O::kl_horizon, "horizon of the adaptive controller", Range::at_least(1));
    return t;
  }();
  return t;
}

namespace {
// The schedule counts gradient steps: iterations x epochs x minibatches.
int64_t gradient_steps(const PPOConfig &o) {
  return o.loop.steps * o.ppo_epochs * ((o.batch_size + o.minibatch_size() - 1) / o.minibatch_size());
}
}  // namespace

// The state before response token t is the prompt and y_<t, whose last token sits at P-1+t.
Tensor response_values(const nn::ScalarModel &value, const nn::GenerationOutput &gen) {
  const int64_t P = gen.prompt_len, N = gen.response_ids.shape()[1];
  Tensor v = value.values(gen.sequences, gen.attention_mask);  // [B, P+N]
  return v.narrow(1, P - 1, N) * gen.response_mask;           // [B, N], 0 after EOS
}

PPOTrainer::PPOTrainer(nn::GPT &policy, const nn::GPT &ref, nn::ScalarModel &value, Rewards reward,
                       const nn::Tokenizer &tok, PPOConfig opts)
    : policy_(policy),
      ref_(ref),
      value_(value),
      reward_(std::move(reward)),
      tok_(tok),
      o_((ppo_options().check(opts, "ppo"), std::move(opts))),
      policy_opt_(policy, o_.optim, gradient_steps(o_)),
      value_opt_(value, o_.optim, gradient_steps(o_)),
      beta_(o_.beta) {
  check_reward_model_fits(policy.config, value.backbone->config, "(value model)", 0);
  check_accumulation("ppo", o_.minibatch_size(), o_.loop.gradient_accumulation_steps,
                     "rollouts per minibatch (batch_size / num_mini_batches)");
}

void PPOTrainer::register_state(TrainState &state) {
  state.add("value_model", value_).add("optimizer", policy_opt_).add("value_optimizer", value_opt_);
  state.add("beta", beta_).add("iter", iter_).add("updates", updates_);
  state.add("last_lr", last_stats_.lr).add("last_grad_norm", last_stats_.grad_norm);
}

Metrics PPOTrainer::step(const std::vector<std::string> &prompts) {
  const double T = o_.sampling.temperature;
  policy_.eval();  // dropout off everywhere, also while training (N implementation details)
  value_.eval();

  // 1-2. Rollout: one response per prompt at temperature T, scored; a response with no <|eos|>
  //      pays the missing-EOS penalty. [B]
  last_ = rollout(policy_, tok_, prompts, 1, o_.sampling, iteration_seed(o_.seed, (uint64_t)iter_), reward_);
  const nn::GenerationOutput &gen = last_.gen;
  const int64_t B = gen.sequences.shape()[0];
  const Tensor &mask = gen.response_mask;  // [B, N]
  const Tensor &score = last_.scores;

  // 3. Everything the update treats as constant, computed once without a graph (FORMULAS 7.5).
  //    old log-probs come from the same forward as training (not the sampler's KV-cache path), so
  //    the first minibatch's ratio is exactly 1.
  //    kl: the per-token KL estimate of kl_estimator (TRL), in the rewards and in objective/kl.
  Tensor old_logp, ref_logp, kl, old_values, rewards, advantages, returns;  // [B, N]
  {
    NoGradGuard ng;
    old_logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(policy_, g, T); });
    ref_logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(ref_, g, T); });
    kl = o_.kl_estimator == "k3" ? kl_k3(old_logp, ref_logp) : kl_k1(old_logp, ref_logp);
    old_values = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_values(value_, g); });
    rewards = kl_penalized_rewards(score, kl, mask, beta_);
    if (o_.whiten_rewards) rewards = masked_whiten(rewards, mask, /*shift_mean=*/false);
    GAEResult adv = gae(rewards, old_values, mask, o_.gamma, o_.lam);
    returns = adv.returns;  // A + V_old, before whitening
    advantages = masked_whiten(adv.advantages, mask);
  }

  // 4. ppo_epochs passes over shuffled minibatches; total loss = pg + vf_coef * vf, a mean over the
  //    minibatch's response tokens: each micro-batch weighs its share of those tokens.
  const std::vector<double> row_tokens = mask.sum({1}).to_vector<double>();
  Metrics sum;
  double first_ratio = 0, first_clipfrac = 0;
  int64_t n_mb = 0;
  const int64_t mb_size = o_.minibatch_size();
  for (int64_t epoch = 0; epoch < o_.ppo_epochs; ++epoch) {
    std::vector<size_t> perm = shuffled_indices((size_t)B, minibatch_seed(o_.seed, (uint64_t)(iter_ * o_.ppo_epochs + epoch)));
    for (int64_t start = 0; start < B; start += mb_size) {
      const std::vector<size_t> minibatch(perm.begin() + start, perm.begin() + std::min(B, start + mb_size));
      const double mb_tokens = sum_rows(row_tokens, minibatch);
      AccumulatedMetrics acc;
      for (const std::vector<size_t> &part : micro_batches(minibatch, o_.loop.gradient_accumulation_steps)) {
        const std::vector<int64_t> idx(part.begin(), part.end());
        Tensor it = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(mask.device());
        auto rows = [&](const Tensor &x) { return index_select(x, 0, it); };  // float [B, N] -> [b, N]
        nn::GenerationOutput mb = select_rows(gen, idx);
        Tensor mb_mask = rows(mask);
        const double w = share(sum_rows(row_tokens, part), mb_tokens);

        Tensor logits;  // [b, N, V], raw
        Tensor logp = response_logprobs(policy_, mb, T, &logits);
        PPOPolicyLoss pg = ppo_policy_loss(logp, rows(old_logp), rows(advantages), mb_mask, o_.cliprange);
        Tensor v = response_values(value_, mb);
        PPOValueLoss vf = ppo_value_loss(v, rows(old_values), rows(returns), mb_mask, o_.cliprange_value);
        ((pg.loss + vf.loss * o_.vf_coef) * w).backward();

        NoGradGuard ng;
        acc.add({{"loss/policy_avg", pg.loss.item()},
                 {"loss/value_avg", vf.loss.item()},
                 {"policy/clipfrac_avg", pg.clipfrac.item()},
                 {"val/clipfrac_avg", vf.clipfrac.item()},
                 {"policy/approxkl_avg", pg.approx_kl.item()},
                 {"val/ratio", pg.ratio_mean.item()},
                 {"policy/entropy_avg", masked_mean(entropy_from_logits(logits.detach() * (1.0 / T)), mb_mask).item()}},
                w);
      }
      last_stats_ = policy_opt_.step(updates_);  // clips, steps, zeroes the gradients
      value_opt_.step(updates_);
      ++updates_;
      const Metrics mb_metrics = acc.result();
      if (n_mb == 0) {
        first_ratio = mb_metrics.at("val/ratio");
        first_clipfrac = mb_metrics.at("policy/clipfrac_avg");
      }
      for (const auto &[k, v] : mb_metrics) sum[k] += v;
      ++n_mb;
    }
  }

  // 5. Metrics (TRL's names) and the KL controller.
  Metrics m;
  NoGradGuard ng;
  const double mean_kl = (kl * mask).sum({1}).mean().item();  // sequence KL of the rollout policy
  m["objective/scores"] = score.mean().item();
  m["objective/kl"] = mean_kl;
  m["objective/entropy"] = (-old_logp.sum({1})).mean().item();
  m["objective/non_score_reward"] = -beta_ * mean_kl;
  m["objective/rlhf_reward"] = m["objective/scores"] - beta_ * mean_kl;
  for (const auto &[k, v] : sum) m[k] = v / double(n_mb);  // means over the minibatch updates
  m["val/ratio_first_minibatch"] = first_ratio;
  m["val/clipfrac_first_minibatch"] = first_clipfrac;
  m.merge(rollout_metrics(last_));
  m["beta"] = beta_;
  m["lr"] = last_stats_.lr;
  m["grad_norm"] = last_stats_.grad_norm;
  if (o_.adaptive_kl) beta_ = adaptive_kl_beta(beta_, mean_kl, o_.target_kl, B, o_.kl_horizon);
  ++iter_;
  return m;
}

// ---- the command-line trainer ----

Metrics run_ppo(const PPOConfig &cfg, bool quiet) {
  PolicyRun run("ppo", cfg.run, cfg.sampling.max_new_tokens, cfg.seed, cfg.device, quiet);
  Rewards reward = make_rewards(cfg.rewards, run.rm.get(), "ppo");
  NR_CHECK(run.rm, "ppo: reward_model is empty; PPO's value model starts as the reward model, so PPO needs one "
           "even when reward_funcs=verifier");
  // The value model starts as the reward model (N+ implementation details), and is trained.
  auto value = std::make_shared<nn::ScalarModel>(run.rm->backbone->config);
  value->to(run.device);
  value->copy_from(*run.rm);
  value->requires_grad_(true);
  value->eval();
  PPOTrainer tr(*run.sft.model, *run.ref, *value, std::move(reward), run.sft.tokenizer, cfg);
  return train_on_prompts(run, tr, cfg, ppo_options(), "objective/rlhf_reward");
}

}  // namespace nanorlhf::rlhf
