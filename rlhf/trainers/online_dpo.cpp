// Iterative DPO, one round read top to bottom in online_dpo_round: sample K, score, pair best vs
// worst, freeze the current model as the reference, DPO on the round's pairs.
#include "rlhf/trainers/online_dpo.h"

#include <algorithm>

#include "nn/generation.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

std::vector<TokenizedPair> best_worst_pairs(const Rollout &r, const Tensor &score, int64_t k, const nn::Tokenizer &tok) {
  const int64_t B = r.gen.response_ids.shape()[0], N = r.gen.response_ids.shape()[1];
  NR_CHECK(k >= 2 && B % k == 0, "best_worst_pairs: {} rows are not groups of k = {}", B, k);
  std::vector<double> s = score.to_vector<double>();
  std::vector<int64_t> ids = r.gen.response_ids.cpu().contiguous().to_vector<int64_t>();
  std::vector<float> m = r.gen.response_mask.cpu().contiguous().to_vector<float>();
  auto response = [&](int64_t row) {
    std::vector<int64_t> y;
    for (int64_t t = 0; t < N; ++t)
      if (m[row * N + t] != 0) y.push_back(ids[row * N + t]);
    return y;
  };
  std::vector<TokenizedPair> out;
  for (int64_t g = 0; g < B / k; ++g) {
    int64_t best = g * k, worst = g * k;
    for (int64_t j = 1; j < k; ++j) {
      if (s[g * k + j] > s[best]) best = g * k + j;
      if (s[g * k + j] < s[worst]) worst = g * k + j;
    }
    if (s[best] == s[worst]) continue;  // no preference to learn
    TokenizedPair p;
    p.prompt = tok.encode_prompt(r.prompts[best]);
    p.chosen = response(best);
    p.rejected = response(worst);
    p.source = "round sample " + std::to_string(g);
    out.push_back(std::move(p));
  }
  return out;
}

Metrics online_dpo_round(nn::GPT &policy, const RewardFn &reward, const nn::Tokenizer &tok,
                         const std::vector<std::string> &prompts, const OnlineDPOOptions &o, int64_t round) {
  NR_CHECK(o.k >= 2, "online_dpo: k must be >= 2, got {}", o.k);
  NR_CHECK(o.dpo.loss_type != "simpo", "online_dpo: use a loss with a reference (sigmoid, ipo, hinge), not simpo");
  // 1. K responses per prompt from the current model.
  std::vector<std::string> batch;
  for (const auto &p : prompts)
    for (int64_t j = 0; j < o.k; ++j) batch.push_back(p);
  nn::GenerationConfig g;
  g.max_new_tokens = o.sampling.max_new_tokens;
  g.temperature = o.sampling.temperature;
  g.seed = o.seed * 1000003ULL + (uint64_t)round;
  Rollout r = sample_responses(policy, tok, batch, g);
  // 2. Score, pair best against worst.
  Tensor score = apply_missing_eos_penalty(reward(r), r.gen.finished, o.sampling.missing_eos_penalty);
  std::vector<TokenizedPair> pairs = best_worst_pairs(r, score, o.k, tok);
  Metrics m;
  m["objective/scores"] = score.mean().item();
  m["online_dpo/pairs"] = (double)pairs.size();
  if (pairs.empty()) return m;
  // 3. The reference of this round is the model that sampled it (Xiong et al.; RLHFlow).
  auto ref = frozen_copy(policy);
  DPOOptions d = o.dpo;
  const int64_t per_epoch = ((int64_t)pairs.size() + d.batch_size - 1) / d.batch_size;
  d.optim.steps = per_epoch * o.dpo_epochs;
  DPOTrainer tr(policy, ref.get(), std::move(pairs), tok.pad_id(), d);
  // 4. DPO epochs over the round's pairs.
  Metrics sum;
  int64_t n = 0;
  for (int64_t e = 0; e < o.dpo_epochs; ++e) {
    std::vector<size_t> order = shuffled_indices(tr.size(), o.seed * 7919ULL + (uint64_t)(round * o.dpo_epochs + e));
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

std::vector<ConfigKey> online_dpo_schema() {
  std::vector<ConfigKey> s;
  for (auto &key : sampling_trainer_keys("online_dpo")) {
    if (key.name == "beta") key.help = "DPO beta of each round";
    if (key.name == "steps") key.help = "rounds";
    if (key.name == "batch_size") key.help = "prompts per round";
    if (key.name == "log_every") key.help = "rounds between metrics.jsonl records";
    if (key.name == "eval_every") key.help = "rounds between oracle evaluations; 0 = at the end only";
    s.push_back(key);
  }
  s.push_back({"k", 4, "responses sampled per prompt (best vs worst by the reward model)", 2.0});
  s.push_back({"dpo_epochs", 2, "passes over each round's pairs", 1.0});
  s.push_back({"dpo_batch_size", 16, "pairs per DPO step", 1.0});
  s.push_back({"loss_type", "sigmoid", "sigmoid (DPO), ipo or hinge (SLiC-HF)"});
  s.push_back({"label_smoothing", 0.0, "cDPO: the assumed share of flipped labels (sigmoid only)", 0.0, 0.49});
  set_default(s, "beta", 0.1);
  set_default(s, "steps", 4);
  set_default(s, "batch_size", 64);
  set_default(s, "lr", 3e-5);
  return s;
}

Metrics run_online_dpo(const Config &c, bool quiet) {
  SamplingRun run(c, "online_dpo", quiet);
  NR_CHECK(run.rm, "online_dpo: reward_model is empty; the pairs are ranked by the learned reward");
  OnlineDPOOptions o;
  o.prompts_per_round = run.batch_size;
  o.k = c.integer("k");
  o.dpo_epochs = c.integer("dpo_epochs");
  o.dpo.loss_type = c.str("loss_type");
  o.dpo.beta = run.beta;
  o.dpo.label_smoothing = c.num("label_smoothing");
  o.dpo.batch_size = c.integer("dpo_batch_size");
  o.dpo.optim = run.optim;
  o.sampling = run.sampling;
  o.seed = run.seed;
  RewardFn reward = reward_model_fn(*run.rm);
  for (int64_t round = 0; round < run.iterations; ++round) {
    Metrics m = online_dpo_round(*run.sft.model, reward, run.sft.tokenizer, run.next_prompts(o.prompts_per_round), o, round);
    run.log(round, m, "rewards/accuracies");
    if (run.should_evaluate(round)) run.evaluate(round + 1);
  }
  return run.finish();
}

}  // namespace nanorlhf::rlhf
