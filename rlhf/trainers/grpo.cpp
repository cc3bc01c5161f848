// GRPO, read top to bottom in GRPOTrainer::step; the equations are in rlhf/objectives_grpo.cpp.
#include "rlhf/trainers/grpo.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "rlhf/batching.h"
#include "nn/distributed.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

const OptionTable<GRPOConfig> &grpo_options() {
  using O = GRPOConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.help("batch_size", "prompts per iteration; each is sampled num_generations times")
        .add("num_generations", &O::num_generations, "G: samples per prompt, each other's baseline",
             Range::at_least(2))
        .add("beta", &O::beta, "weight of the k3 KL to the reference in the loss (TRL's default 0)", Range::at_least(0))
        .add("epsilon", &O::epsilon, "clip range: the ratio is clipped below at 1 - epsilon", Range::above(0))
        .add("epsilon_high", &O::epsilon_high, "upper clip 1 + epsilon_high (DAPO's clip-higher, e.g. 0.28); 0 = epsilon",
             Range::at_least(0))
        .add("num_iterations", &O::num_iterations, "gradient steps on each generation batch (mu)", Range::at_least(1))
        .add("loss_type", &O::loss_type,
             "normalisation of the per-token loss: grpo (per sequence), bnpo (per token of each micro-batch, as "
             "TRL's), dapo (per token of the global batch), dr_grpo (by batch x max_new_tokens)",
             {}, {"grpo", "bnpo", "dr_grpo", "dapo"})
        .add("scale_rewards", &O::scale_rewards, "advantage scale: group std, batch std, or none (Dr. GRPO)", {},
             {"group", "batch", "none"})
        .add("mask_truncated_completions", &O::mask_truncated_completions,
             "responses cut at max_new_tokens (no <|eos|>) leave the loss");
    return t;
  }();
  return t;
}

void GRPOConfig::validate() const {
  try {
    rewards.validate();
  } catch (const Error &e) {
    throw Error(std::string("grpo: ") + e.what());
  }
}

GRPOTrainer::GRPOTrainer(nn::GPT &policy, const nn::GPT &ref, Rewards reward, const nn::Tokenizer &tok,
                         GRPOConfig opts)
    : policy_(policy),
      ref_(ref),
      reward_(std::move(reward)),
      tok_(tok),
      o_((grpo_options().check(opts, "grpo"), opts.validate(), std::move(opts))),
      opt_(policy, o_.optim, o_.loop.steps * o_.num_iterations) {
  check_accumulation("grpo", o_.batch_size * o_.num_generations, o_.loop.gradient_accumulation_steps,
                     "completions (batch_size x num_generations)");
}

void GRPOTrainer::register_state(TrainState &state) {
  state.add("optimizer", opt_).add("iter", iter_).add("optimizer_steps", opt_steps_);
}

Metrics GRPOTrainer::step(const std::vector<std::string> &prompts) {
  const int64_t G = o_.num_generations;
  const double T = o_.sampling.temperature;
  const double eps_high = o_.epsilon_high > 0 ? o_.epsilon_high : o_.epsilon;
  policy_.eval();  // dropout off, also while training (N implementation details)

  // 1. Sample each prompt G times (consecutive rows: one group) and score every completion. [B G]
  last_ = rollout(policy_, tok_, prompts, G, o_.sampling, iteration_seed(o_.seed, (uint64_t)iter_), reward_);
  const nn::GenerationOutput &gen = last_.gen;

  // 2. Group-relative advantages, one per completion.
  GRPOAdvantages adv = grpo_advantages(last_.scores, G, o_.scale_rewards);

  // 3. The tokens that count: with mask_truncated_completions, none of a response that never ended.
  Tensor mask = gen.response_mask;
  if (o_.mask_truncated_completions) {
    std::vector<double> fin(gen.finished.begin(), gen.finished.end());
    mask = mask * from_vector<double>(fin, {(int64_t)fin.size(), 1}).to(mask.dtype()).to(mask.device());
  }

  // 4. log pi_ref (no graph: the k3 term and the kl metric) and, for num_iterations > 1, log pi_old
  //    of the sampling policy, fixed for all the iterations on this batch.
  Tensor ref_logp, old_logp;
  {
    NoGradGuard ng;
    ref_logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(ref_, g, T); });
    if (o_.num_iterations > 1)
      old_logp = on_shards(gen, [&](const nn::GenerationOutput &g) { return response_logprobs(policy_, g, T); });
  }

  // 5. num_iterations gradient steps on the batch; with one, pi_old = pi_theta (ratio 1, as TRL).
  //    Each micro-batch of completions weighs its share of the loss's count: of the completions
  //    (grpo, dr_grpo) or of the batch's tokens (dapo, through num_items). bnpo normalises each
  //    micro-batch by its own tokens, as TRL's does, so bnpo alone changes with the cut.
  const int64_t n_rows = gen.sequences.shape()[0];
  const std::vector<double> row_tokens = mask.sum({1}).to_vector<double>();
  const std::vector<double> row_resp = gen.response_mask.sum({1}).to_vector<double>();
  const std::vector<size_t> all = index_range(0, (size_t)n_rows);
  const std::vector<std::vector<size_t>> parts = micro_batches(all, o_.loop.gradient_accumulation_steps);
  const double tokens = sum_rows(row_tokens, all), resp_tokens = sum_rows(row_resp, all);
  Metrics m;
  for (int64_t it = 0; it < o_.num_iterations; ++it) {
    opt_.zero_grad();
    AccumulatedMetrics acc;
    for (const std::vector<size_t> &part : parts) {
      const std::vector<int64_t> idx(part.begin(), part.end());
      Tensor at = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(mask.device());
      auto rows = [&](const Tensor &x) { return x.defined() ? index_select(x, 0, at) : x; };
      nn::GenerationOutput mb = select_rows(gen, idx);
      Tensor logits;
      Tensor logp = response_logprobs(policy_, mb, T, it == 0 ? &logits : nullptr);
      GRPOLoss L = grpo_loss(logp, o_.num_iterations > 1 ? rows(old_logp) : logp.detach(), rows(ref_logp),
                             rows(adv.advantages), rows(mask), o_.epsilon, eps_high, o_.beta, o_.loss_type,
                             o_.sampling.max_new_tokens, tokens);
      const double w = o_.loss_type == "dapo"   ? 1.0
                       : o_.loss_type == "bnpo" ? 1.0 / double(parts.size() * dist::world_size())
                                                : share((double)part.size(), (double)n_rows);
      (L.loss * w).backward();
      NoGradGuard ng;
      const double w_tok = share(sum_rows(row_tokens, part), tokens);
      acc.add("loss", L.loss.item(), w);
      acc.add({{"clip_ratio/low_mean", L.clip_low.item()},
               {"clip_ratio/high_mean", L.clip_high.item()},
               {"clip_ratio/region_mean", L.clip_region.item()}}, w_tok);
      if (it == 0) {
        acc.add("kl", L.kl.item(), w_tok);
        acc.add("entropy", masked_mean(entropy_from_logits(logits.detach() / T), mb.response_mask).item(),
                share(sum_rows(row_resp, part), resp_tokens));
      }
    }
    optim::Optimization::Stats st = opt_.step(opt_steps_++);
    for (const auto &[k, v] : acc.result()) m[k] = v;  // kl and entropy: the first iteration's; the rest the last's
    m["grad_norm"] = st.grad_norm;
    m["lr"] = st.lr;
  }

  // TRL's metrics: reward, reward_std (mean of the groups' std), frac_reward_zero_std, completions/*.
  std::vector<double> score = last_.scores.to_vector<double>(), gstd = adv.group_std.to_vector<double>();
  std::vector<double> len = gen.response_mask.sum({1}).to_vector<double>();
  const int64_t n = (int64_t)score.size(), groups = n / G;
  double reward = 0, std_sum = 0, zero_std = 0, terminated = 0, terminated_len = 0;
  for (int64_t i = 0; i < n; ++i) {
    reward += score[i] / double(n);
    if (gen.finished[i]) terminated += 1, terminated_len += len[i];
  }
  for (int64_t g = 0; g < n; g += G) std_sum += gstd[g], zero_std += gstd[g] < 1e-6;
  m["reward"] = reward;
  m["reward_std"] = std_sum / double(groups);
  m["frac_reward_zero_std"] = zero_std / double(groups);
  m["completions/mean_length"] = std::accumulate(len.begin(), len.end(), 0.0) / double(n);
  m["completions/min_length"] = *std::min_element(len.begin(), len.end());
  m["completions/max_length"] = *std::max_element(len.begin(), len.end());
  m["completions/clipped_ratio"] = 1.0 - terminated / double(n);
  m["completions/mean_terminated_length"] = terminated > 0 ? terminated_len / terminated : 0.0;
  m.merge(rollout_metrics(last_));
  ++iter_;
  return m;
}

// ---- the command-line trainer ----

Metrics run_grpo(const GRPOConfig &cfg, bool quiet) {
  grpo_options().check(cfg, "grpo");
  cfg.validate();
  PolicyRun run("grpo", without_unused_reward_model(cfg.run, cfg.rewards), cfg.sampling.max_new_tokens, cfg.seed,
                cfg.device, quiet);
  GRPOTrainer tr(*run.sft.model, *run.ref, make_rewards(cfg.rewards, run.rm.get(), "grpo"), run.sft.tokenizer, cfg);
  return train_on_prompts(run, tr, cfg, grpo_options(), "reward");
}

}  // namespace nanorlhf::rlhf
