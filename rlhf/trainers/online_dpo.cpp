// Iterative DPO, one round read top to bottom in online_dpo_round: sample K, score, pair best vs
// worst, freeze the current model as the reference, DPO on the round's pairs.
#include "rlhf/trainers/online_dpo.h"

#include <algorithm>

#include "rlhf/batching.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

void OnlineDPOConfig::validate() const { dpo.validate(); }

const OptionTable<OnlineDPOConfig> &online_dpo_options() {
  using O = OnlineDPOConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.help("steps", "rounds")
        .help("batch_size", "prompts per round")
        .help("log_every", "rounds between metrics.jsonl records")
        .help("eval_every", "rounds between oracle evaluations; 0 = at the end only")
        .add("beta", [](O &o) -> auto & { return o.dpo.beta; }, "DPO beta of each round", Range::above(0))
        .add("k", &O::k, "responses sampled per prompt (best vs worst by the reward model)", Range::at_least(2))
        .add("dpo_epochs", &O::dpo_epochs, "passes over each round's pairs", Range::at_least(1))
        .add("dpo_batch_size", [](O &o) -> auto & { return o.dpo.batch_size; }, "pairs per DPO step",
             Range::at_least(1))
        .add("loss_type", [](O &o) -> auto & { return o.dpo.loss_type; }, "sigmoid (DPO), ipo or hinge (SLiC-HF)", {},
             {"sigmoid", "ipo", "hinge"})
        .add("label_smoothing", [](O &o) -> auto & { return o.dpo.label_smoothing; },
             "cDPO: the assumed share of flipped labels (sigmoid only)", Range::between(0, 0.49));
    return t;
  }();
  return t;
}

std::vector<PreferencePair> best_worst_pairs(const Rollout &r, int64_t k, const nn::Tokenizer &tok) {
  const int64_t B = r.gen.response_ids.shape()[0], N = r.gen.response_ids.shape()[1];
  NR_CHECK(k >= 2 && B % k == 0, "best_worst_pairs: {} rows are not groups of k = {}", B, k);
  std::vector<double> s = r.scores.to_vector<double>();
  std::vector<int64_t> ids = r.gen.response_ids.cpu().contiguous().to_vector<int64_t>();
  std::vector<float> m = r.gen.response_mask.cpu().contiguous().to_vector<float>();
  auto response = [&](int64_t row) {
    std::vector<int64_t> y;
    for (int64_t t = 0; t < N; ++t)
      if (m[row * N + t] != 0) y.push_back(ids[row * N + t]);
    return y;
  };
  std::vector<PreferencePair> out;
  for (int64_t g = 0; g < B / k; ++g) {
    int64_t best = g * k, worst = g * k;
    for (int64_t j = 1; j < k; ++j) {
      if (s[g * k + j] > s[best]) best = g * k + j;
      if (s[g * k + j] < s[worst]) worst = g * k + j;
    }
    if (s[best] == s[worst]) continue;  // no preference to learn
    PreferencePair p;
    p.prompt = r.prompts[best];
    p.chosen = r.responses[best];
    p.rejected = r.responses[worst];
    p.chosen_finished = r.gen.finished[best];
    p.rejected_finished = r.gen.finished[worst];
    p.prompt_ids = tok.encode_prompt(r.prompts[best]);
    p.chosen_ids = response(best);
    p.rejected_ids = response(worst);
    p.source = "round sample " + std::to_string(g);
    out.push_back(std::move(p));
  }
  return out;
}

Metrics online_dpo_round(nn::GPT &policy, const RewardFn &reward, const nn::Tokenizer &tok,
                         const std::vector<std::string> &prompts, const OnlineDPOConfig &o, int64_t round) {
  online_dpo_options().check(o, "online_dpo");
  // 1. K responses per prompt from the current model, scored; 2. best against worst.
  Rollout r = rollout(policy, tok, prompts, o.k, o.sampling, iteration_seed(o.seed, (uint64_t)round), reward);
  std::vector<PreferencePair> pairs = best_worst_pairs(r, o.k, tok);
  Metrics m;
  m["objective/scores"] = r.scores.mean().item();
  m["online_dpo/pairs"] = (double)pairs.size();
  if (pairs.empty()) return m;
  // 3. The reference of this round is the model that sampled it (Xiong et al.; RLHFlow).
  auto ref = frozen_copy(policy);
  DPOConfig d = o.dpo;
  d.optim = o.optim;
  d.loop.steps = 0;  // the schedule spans dpo_epochs passes over the round's pairs
  d.loop.gradient_accumulation_steps = o.loop.gradient_accumulation_steps;
  d.epochs = o.dpo_epochs;
  DPOTrainer tr(policy, ref.get(), std::move(pairs), tok.pad_id(), d);
  // 4. DPO epochs over the round's pairs.
  Metrics sum;
  int64_t n = 0;
  for (int64_t e = 0; e < o.dpo_epochs; ++e) {
    std::vector<size_t> order = shuffled_indices(tr.size(), minibatch_seed(o.seed, (uint64_t)(round * o.dpo_epochs + e)));
    for (size_t s = 0; s < order.size(); s += (size_t)d.batch_size) {
      std::vector<size_t> idx(order.begin() + (long)s, order.begin() + (long)std::min(order.size(), s + (size_t)d.batch_size));
      for (auto &[key, v] : tr.step(idx)) sum[key] += v;
      ++n;
    }
  }
  for (auto &[key, v] : sum) m[key] = v / (double)n;
  // KL of the updated model to this round's reference, on the round's own samples (k1).
  NoGradGuard ng;
  const double T = o.sampling.temperature;
  m["objective/kl"] = (kl_k1(response_logprobs(policy, r.gen, T), response_logprobs(*ref, r.gen, T)) * r.gen.response_mask)
                          .sum({1})
                          .mean()
                          .item();
  return m;
}

Metrics run_online_dpo(const OnlineDPOConfig &cfg, bool quiet) {
  PolicyRun run("online_dpo", cfg.run, cfg.sampling.max_new_tokens, cfg.seed, cfg.device, quiet);
  NR_CHECK(run.rm, "online_dpo: reward_model is empty; the pairs are ranked by the learned reward");
  RewardFn reward = reward_model_fn(*run.rm);
  check_accumulation("online_dpo", cfg.dpo.batch_size, cfg.loop.gradient_accumulation_steps,
                     "pairs (dpo_batch_size)");
  RunDir &dir = run.begin(online_dpo_options().resolved(cfg));
  run_training_loop(run.loop(cfg.loop, "rewards/accuracies"), dir, [&](int64_t round) {
    return StepOutput{online_dpo_round(*run.sft.model, reward, run.sft.tokenizer, run.next_prompts(cfg.batch_size), cfg,
                                       round), 0};
  }, [&](int64_t step) { run.evaluate(step); });
  return run.finish(cfg.loop.steps);
}

}  // namespace nanorlhf::rlhf
