// RAFT, one iteration read top to bottom in RaftTrainer::step: sample K per prompt, rank by the
// reward, keep the best of each prompt, fine-tune on them with the SFT loss.
#include "rlhf/trainers/raft.h"

#include <algorithm>

#include "nn/generation.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"
#include "rlhf/trainers/ppo.h"

namespace nanorlhf::rlhf {

RaftTrainer::RaftTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok,
                         RaftOptions opts)
    : policy_(policy), ref_(ref), reward_(std::move(reward)), tok_(tok), o_(std::move(opts)), opt_(policy, o_.optim) {
  NR_CHECK(o_.k >= 2, "raft: k must be >= 2 (the best of k), got {}", o_.k);
  NR_CHECK(o_.sft_epochs >= 1 && o_.minibatch_size >= 1, "raft: sft_epochs ({}) and minibatch_size ({}) must be >= 1",
           o_.sft_epochs, o_.minibatch_size);
  NR_CHECK(o_.sampling.temperature > 0, "raft: temperature must be > 0, got {}", o_.sampling.temperature);
}

Metrics RaftTrainer::step(const std::vector<std::string> &prompts) {
  const int64_t k = o_.k, n = (int64_t)prompts.size();
  policy_.eval();  // dropout off

  // 1. K responses per prompt, consecutive rows. [n k]
  std::vector<std::string> batch;
  for (const auto &p : prompts)
    for (int64_t j = 0; j < k; ++j) batch.push_back(p);
  nn::GenerationConfig g;
  g.max_new_tokens = o_.sampling.max_new_tokens;
  g.temperature = o_.sampling.temperature;
  g.seed = o_.seed * 1000003ULL + (uint64_t)iter_;
  Rollout r = sample_responses(policy_, tok_, batch, g);

  // 2. Rank by the learned reward (missing-EOS penalty included); keep the best of each prompt.
  Tensor score = apply_missing_eos_penalty(reward_(r), r.gen.finished, o_.sampling.missing_eos_penalty);
  std::vector<double> s = score.to_vector<double>();
  kept_.clear();
  double kept_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = i * k;
    for (int64_t j = 1; j < k; ++j)
      if (s[i * k + j] > s[best]) best = i * k + j;
    kept_.push_back(best);
    kept_sum += s[best];
  }
  nn::GenerationOutput kept = select_rows(r.gen, kept_);

  // 3. SFT on the kept responses: -mean log pi(y_t | x, y_<t) over response tokens (temperature 1:
  //    plain likelihood, as in instruction tuning).
  double loss_sum = 0;
  int64_t n_mb = 0;
  Optimization::Stats st;
  for (int64_t epoch = 0; epoch < o_.sft_epochs; ++epoch) {
    std::vector<size_t> perm = shuffled_indices((size_t)n, o_.seed * 7919ULL + (uint64_t)(iter_ * o_.sft_epochs + epoch));
    for (int64_t start = 0; start < n; start += o_.minibatch_size) {
      std::vector<int64_t> idx;
      for (int64_t j = start; j < std::min(n, start + o_.minibatch_size); ++j) idx.push_back((int64_t)perm[j]);
      nn::GenerationOutput mb = select_rows(kept, idx);
      Tensor loss = sft_loss(response_logprobs(policy_, mb, 1.0), mb.response_mask);
      loss.backward();
      st = opt_.step(updates_++);
      loss_sum += loss.item();
      ++n_mb;
    }
  }

  Metrics m;
  NoGradGuard ng;
  const double T = o_.sampling.temperature;
  Tensor kl = (kl_k1(response_logprobs(policy_, kept, T), response_logprobs(ref_, kept, T)) * kept.response_mask).sum({1});
  m["objective/scores"] = score.mean().item();
  m["raft/kept_scores"] = kept_sum / (double)n;
  m["objective/kl"] = kl.mean().item();
  m["loss"] = loss_sum / (double)n_mb;
  m["val/eos_frac"] = (double)std::count(r.gen.finished.begin(), r.gen.finished.end(), true) / (double)(n * k);
  m["val/response_len"] = r.gen.response_mask.sum().item() / (double)(n * k);
  m["lr"] = st.lr;
  m["grad_norm"] = st.grad_norm;
  ++iter_;
  return m;
}

std::vector<ConfigKey> raft_schema() {
  std::vector<ConfigKey> s;
  for (auto &key : sampling_trainer_keys("raft"))
    if (key.name != "beta") s.push_back(key);  // RAFT has no KL term; the KL to SFT is only reported
  s.push_back({"k", 4, "responses sampled per prompt; the best by the reward model is kept", 2.0});
  s.push_back({"sft_epochs", 1, "passes over the kept responses per iteration", 1.0});
  s.push_back({"minibatch_size", 16, "kept responses per gradient step", 1.0});
  set_default(s, "steps", 20);
  set_default(s, "batch_size", 32);
  set_default(s, "lr", 3e-5);
  return s;
}

Metrics run_raft(const Config &c, bool quiet) {
  SamplingRun run(c, "raft", quiet);
  NR_CHECK(run.rm, "raft: reward_model is empty; RAFT ranks by the learned reward");
  RaftOptions o;
  o.batch_size = run.batch_size;
  o.k = c.integer("k");
  o.sft_epochs = c.integer("sft_epochs");
  o.minibatch_size = c.integer("minibatch_size");
  o.sampling = run.sampling;
  o.optim = run.optim;
  o.optim.steps = run.iterations * o.sft_epochs * ((o.batch_size + o.minibatch_size - 1) / o.minibatch_size);
  o.seed = run.seed;
  RaftTrainer tr(*run.sft.model, *run.ref, reward_model_fn(*run.rm), run.sft.tokenizer, o);
  for (int64_t it = 0; it < run.iterations; ++it) {
    Metrics m = tr.step(run.next_prompts(o.batch_size));
    run.log(it, m, "raft/kept_scores");
    if (run.should_evaluate(it)) run.evaluate(it + 1);
  }
  return run.finish();
}

}  // namespace nanorlhf::rlhf
