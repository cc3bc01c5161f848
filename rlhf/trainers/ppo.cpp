// PPO, one iteration read top to bottom in PPOTrainer::step: rollout, score, reference and old
// log-probs, KL-shaped rewards, GAE, whitening, then epochs of clipped minibatch updates.
#include "rlhf/trainers/ppo.h"

#include <algorithm>
#include <cmath>

#include "nn/generation.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

namespace {
// x[idx] along dim 0 (constants only: no graph). index_select wants float rows, so token ids are
// gathered on the host; the batches are small.
Tensor rows(const Tensor &x, const Tensor &idx) {
  if (x.dtype() != kInt64) return index_select(x, 0, idx);
  const int64_t W = x.numel() / x.shape()[0];
  std::vector<int64_t> v = x.cpu().contiguous().to_vector<int64_t>(), out;
  for (int64_t r : idx.cpu().to_vector<int64_t>()) out.insert(out.end(), v.begin() + r * W, v.begin() + (r + 1) * W);
  Shape s = x.shape();
  s[0] = idx.numel();
  return from_vector<int64_t>(out, s).to(x.device());
}
}  // namespace

nn::GenerationOutput select_rows(const nn::GenerationOutput &gen, const std::vector<int64_t> &idx) {
  Tensor i = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(gen.sequences.device());
  nn::GenerationOutput s;
  s.sequences = rows(gen.sequences, i);
  s.attention_mask = rows(gen.attention_mask, i);
  s.response_ids = rows(gen.response_ids, i);
  s.response_mask = rows(gen.response_mask, i);
  s.response_logprobs = rows(gen.response_logprobs, i);
  for (int64_t r : idx) s.finished.push_back(gen.finished[r]);
  s.prompt_len = gen.prompt_len;
  return s;
}

// The state before response token t is the prompt and y_<t, whose last token sits at P-1+t.
Tensor response_values(const nn::ScalarModel &value, const nn::GenerationOutput &gen) {
  const int64_t P = gen.prompt_len, N = gen.response_ids.shape()[1];
  Tensor v = value.values(gen.sequences, gen.attention_mask);  // [B, P+N]
  return v.narrow(1, P - 1, N) * gen.response_mask;           // [B, N], 0 after EOS
}

PPOTrainer::PPOTrainer(nn::GPT &policy, const nn::GPT &ref, nn::ScalarModel &value, RewardFn reward,
                       const nn::Tokenizer &tok, PPOOptions opts)
    : policy_(policy),
      ref_(ref),
      value_(value),
      reward_(std::move(reward)),
      tok_(tok),
      o_(std::move(opts)),
      policy_opt_(policy, o_.optim),
      value_opt_(value, o_.optim),
      beta_(o_.beta) {
  NR_CHECK(o_.beta >= 0, "ppo: beta must be >= 0, got {}", o_.beta);
  NR_CHECK(o_.cliprange > 0, "ppo: cliprange must be > 0, got {}", o_.cliprange);
  NR_CHECK(o_.cliprange_value > 0, "ppo: cliprange_value must be > 0, got {}", o_.cliprange_value);
  NR_CHECK(o_.vf_coef >= 0, "ppo: vf_coef must be >= 0, got {}", o_.vf_coef);
  NR_CHECK(o_.ppo_epochs >= 1 && o_.minibatch_size >= 1, "ppo: ppo_epochs ({}) and minibatch_size ({}) must be >= 1",
           o_.ppo_epochs, o_.minibatch_size);
  NR_CHECK(o_.gamma >= 0 && o_.gamma <= 1 && o_.lam >= 0 && o_.lam <= 1, "ppo: gamma ({}) and lam ({}) must be in [0, 1]",
           o_.gamma, o_.lam);
  NR_CHECK(o_.sampling.temperature > 0, "ppo: temperature must be > 0, got {}", o_.sampling.temperature);
  NR_CHECK(!o_.adaptive_kl || o_.target_kl > 0, "ppo: target_kl must be > 0 with adaptive_kl, got {}", o_.target_kl);
  check_reward_model_fits(policy.config, value.backbone->config, "(value model)", 0);
}

Metrics PPOTrainer::step(const std::vector<std::string> &prompts) {
  const double T = o_.sampling.temperature;
  policy_.eval();  // dropout off everywhere, also while training (N implementation details)
  value_.eval();

  // 1. Rollout: one response per prompt, plain sampling at temperature T (no top-k / top-p, so the
  //    sampling distribution is the one the log-probs below measure).
  nn::GenerationConfig g;
  g.max_new_tokens = o_.sampling.max_new_tokens;
  g.temperature = T;
  g.seed = o_.seed * 1000003ULL + (uint64_t)iter_;
  last_ = sample_responses(policy_, tok_, prompts, g);
  const nn::GenerationOutput &gen = last_.gen;
  const int64_t B = gen.sequences.shape()[0];
  const Tensor &mask = gen.response_mask;  // [B, N]

  // 2. Score; a response with no <|eos|> pays the missing-EOS penalty. [B]
  Tensor score = apply_missing_eos_penalty(reward_(last_), gen.finished, o_.sampling.missing_eos_penalty);

  // 3. Everything the update treats as constant, computed once without a graph (FORMULAS 7.5).
  //    old log-probs come from the same forward as training (not the sampler's KV-cache path), so
  //    the first minibatch's ratio is exactly 1.
  Tensor old_logp, ref_logp, old_values, rewards, advantages, returns;  // [B, N]
  {
    NoGradGuard ng;
    old_logp = response_logprobs(policy_, gen, T);
    ref_logp = response_logprobs(ref_, gen, T);
    old_values = response_values(value_, gen);
    rewards = kl_penalized_rewards(score, old_logp, ref_logp, mask, beta_);
    if (o_.whiten_rewards) rewards = masked_whiten(rewards, mask, /*shift_mean=*/false);
    GAEResult adv = gae(rewards, old_values, mask, o_.gamma, o_.lam);
    returns = adv.returns;  // A + V_old, before whitening
    advantages = masked_whiten(adv.advantages, mask);
  }

  // 4. ppo_epochs passes over shuffled minibatches; total loss = pg + vf_coef * vf.
  double sum_pg = 0, sum_vf = 0, sum_clip = 0, sum_vclip = 0, sum_akl = 0, sum_ratio = 0, sum_ent = 0;
  double first_ratio = 0, first_clipfrac = 0;
  int64_t n_mb = 0;
  for (int64_t epoch = 0; epoch < o_.ppo_epochs; ++epoch) {
    std::vector<size_t> perm = shuffled_indices((size_t)B, o_.seed * 7919ULL + (uint64_t)(iter_ * o_.ppo_epochs + epoch));
    for (int64_t start = 0; start < B; start += o_.minibatch_size) {
      std::vector<int64_t> idx;
      for (int64_t j = start; j < std::min(B, start + o_.minibatch_size); ++j) idx.push_back((int64_t)perm[j]);
      Tensor it = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(mask.device());
      nn::GenerationOutput mb = select_rows(gen, idx);
      Tensor mb_mask = rows(mask, it);

      Tensor logits;  // [b, N, V], raw
      Tensor logp = response_logprobs(policy_, mb, T, &logits);
      PPOPolicyLoss pg = ppo_policy_loss(logp, rows(old_logp, it), rows(advantages, it), mb_mask, o_.cliprange);
      Tensor v = response_values(value_, mb);
      PPOValueLoss vf = ppo_value_loss(v, rows(old_values, it), rows(returns, it), mb_mask, o_.cliprange_value);
      Tensor loss = pg.loss + vf.loss * o_.vf_coef;

      loss.backward();
      last_stats_ = policy_opt_.step(updates_);  // clips, steps, zeroes the gradients
      value_opt_.step(updates_);
      ++updates_;

      NoGradGuard ng;
      if (n_mb == 0) {
        first_ratio = pg.ratio_mean.item();
        first_clipfrac = pg.clipfrac.item();
      }
      sum_pg += pg.loss.item();
      sum_vf += vf.loss.item();
      sum_clip += pg.clipfrac.item();
      sum_vclip += vf.clipfrac.item();
      sum_akl += pg.approx_kl.item();
      sum_ratio += pg.ratio_mean.item();
      sum_ent += masked_mean(entropy_from_logits(logits.detach() * (1.0 / T)), mb_mask).item();
      ++n_mb;
    }
  }

  // 5. Metrics (TRL's names) and the KL controller.
  Metrics m;
  NoGradGuard ng;
  Tensor kl = (kl_k1(old_logp, ref_logp) * mask).sum({1});  // [B] sequence KL of the rollout policy
  const double mean_kl = kl.mean().item();
  const double Bd = (double)B;
  m["objective/scores"] = score.mean().item();
  m["objective/kl"] = mean_kl;
  m["objective/entropy"] = (-old_logp.sum({1})).mean().item();
  m["objective/non_score_reward"] = -beta_ * mean_kl;
  m["objective/rlhf_reward"] = m["objective/scores"] - beta_ * mean_kl;
  m["policy/clipfrac_avg"] = sum_clip / n_mb;
  m["policy/approxkl_avg"] = sum_akl / n_mb;
  m["policy/entropy_avg"] = sum_ent / n_mb;
  m["loss/policy_avg"] = sum_pg / n_mb;
  m["loss/value_avg"] = sum_vf / n_mb;
  m["val/clipfrac_avg"] = sum_vclip / n_mb;
  m["val/ratio"] = sum_ratio / n_mb;
  m["val/ratio_first_minibatch"] = first_ratio;
  m["val/clipfrac_first_minibatch"] = first_clipfrac;
  m["val/eos_frac"] = (double)std::count(gen.finished.begin(), gen.finished.end(), true) / Bd;
  m["val/response_len"] = mask.sum().item() / Bd;
  m["beta"] = beta_;
  m["lr"] = last_stats_.lr;
  m["grad_norm"] = last_stats_.grad_norm;
  if (o_.adaptive_kl) beta_ = adaptive_kl_beta(beta_, mean_kl, o_.target_kl, B, o_.kl_horizon);
  ++iter_;
  return m;
}

// ---- the command-line trainer ----

std::vector<ConfigKey> ppo_schema() {
  std::vector<ConfigKey> s = sampling_trainer_keys("ppo");
  // TRL's default: the whole rollout batch is one minibatch, so 4 gradient steps per batch. With 4
  // minibatches (16 steps) PPO over-optimised the reward model on 3 of 6 measured runs and refused
  // harmless requests (bench/RESULTS.md, "PPO: one minibatch per rollout batch").
  s.push_back({"num_mini_batches", 1, "minibatches per rollout batch per epoch (TRL's name)", 1.0});
  s.push_back({"ppo_epochs", 4, "passes over each rollout batch", 1.0});
  s.push_back({"cliprange", 0.2, "policy ratio clip epsilon", 0.0, std::nullopt, true});
  s.push_back({"cliprange_value", 0.2, "value clip epsilon", 0.0, std::nullopt, true});
  s.push_back({"vf_coef", 0.1, "weight of the value loss in pg + vf_coef * vf", 0.0});
  s.push_back({"gamma", 1.0, "discount", 0.0, 1.0});
  s.push_back({"lam", 0.95, "GAE lambda", 0.0, 1.0});
  s.push_back({"whiten_rewards", false, "whiten the per-token rewards before GAE (mean kept)"});
  s.push_back({"adaptive_kl", false, "adapt beta towards target_kl (Ziegler et al. 2019); false = fixed beta"});
  s.push_back({"target_kl", 6.0, "target sequence KL of the adaptive controller (nats)", 0.0, std::nullopt, true});
  s.push_back({"kl_horizon", 10000, "horizon of the adaptive controller", 1.0});
  // lr 1e-5: on an early world 3e-5 and 1e-4 drifted to KL 5-8 nats and gamed the reward model.
  set_default(s, "steps", 30);
  set_default(s, "batch_size", 32);
  set_default(s, "lr", 1e-5);
  return s;
}

Metrics run_ppo(const Config &c, bool quiet) {
  const int64_t n_mb = c.integer("num_mini_batches");  // checked before any model is loaded
  NR_CHECK(n_mb <= c.integer("batch_size"), "ppo: num_mini_batches ({}) must be <= batch_size ({})", n_mb,
           c.integer("batch_size"));
  SamplingRun run(c, "ppo", quiet);
  NR_CHECK(run.rm, "ppo: reward_model is empty; PPO trains on the learned reward");
  PPOOptions o;
  o.batch_size = run.batch_size;
  o.minibatch_size = (run.batch_size + n_mb - 1) / n_mb;
  o.ppo_epochs = c.integer("ppo_epochs");
  o.beta = run.beta;
  o.adaptive_kl = c.flag("adaptive_kl");
  o.target_kl = c.num("target_kl");
  o.kl_horizon = c.integer("kl_horizon");
  o.gamma = c.num("gamma");
  o.lam = c.num("lam");
  o.cliprange = c.num("cliprange");
  o.cliprange_value = c.num("cliprange_value");
  o.vf_coef = c.num("vf_coef");
  o.whiten_rewards = c.flag("whiten_rewards");
  o.sampling = run.sampling;
  o.optim = run.optim;
  const int64_t per_iter = (o.batch_size + o.minibatch_size - 1) / o.minibatch_size;
  o.optim.steps = run.iterations * o.ppo_epochs * per_iter;  // the schedule counts gradient steps
  o.seed = run.seed;
  // The value model starts as the reward model (N+ implementation details), and is trained.
  auto value = std::make_shared<nn::ScalarModel>(run.rm->backbone->config);
  value->to(run.device);
  value->copy_from(*run.rm);
  value->requires_grad_(true);
  value->eval();
  PPOTrainer tr(*run.sft.model, *run.ref, *value, reward_model_fn(*run.rm), run.sft.tokenizer, o);
  for (int64_t it = 0; it < run.iterations; ++it) {
    Metrics m = tr.step(run.next_prompts(o.batch_size));
    run.log(it, m, "objective/rlhf_reward");
    if (run.should_evaluate(it)) run.evaluate(it + 1);
  }
  return run.finish();
}

}  // namespace nanorlhf::rlhf
