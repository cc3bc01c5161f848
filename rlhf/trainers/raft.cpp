// RAFT, one iteration read top to bottom in RaftTrainer::step: sample K per prompt, rank by the
// reward, keep the best of each prompt, fine-tune on them with the SFT loss.
#include "rlhf/trainers/raft.h"

#include <algorithm>

#include "rlhf/batching.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

const OptionTable<RaftConfig> &raft_options() {
  using O = RaftConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.add("k", &O::k, "responses sampled per prompt; the best by the reward model is kept", Range::at_least(2))
        .add("sft_epochs", &O::sft_epochs, "passes over the kept responses per iteration", Range::at_least(1))
        .add("minibatch_size", &O::minibatch_size, "kept responses per gradient step", Range::at_least(1));
    return t;  // no beta: RAFT has no KL term; the KL to SFT is only reported
  }();
  return t;
}

namespace {
int64_t gradient_steps(const RaftConfig &o) {
  return o.loop.steps * o.sft_epochs * ((o.batch_size + o.minibatch_size - 1) / o.minibatch_size);
}
}  // namespace

RaftTrainer::RaftTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok,
                         RaftConfig opts)
    : policy_(policy),
      ref_(ref),
      reward_(std::move(reward)),
      tok_(tok),
      o_((raft_options().check(opts, "raft"), std::move(opts))),
      opt_(policy, o_.optim, gradient_steps(o_)) {
  check_accumulation("raft", o_.minibatch_size, o_.loop.gradient_accumulation_steps,
                     "kept responses per minibatch (minibatch_size)");
}

void RaftTrainer::register_state(TrainState &state) {
  state.add("optimizer", opt_).add("iter", iter_).add("updates", updates_);
}

Metrics RaftTrainer::step(const std::vector<std::string> &prompts) {
  const int64_t k = o_.k, n = (int64_t)prompts.size();
  policy_.eval();  // dropout off

  // 1. K responses per prompt, consecutive rows, scored (missing-EOS penalty included). [n k]
  Rollout r = rollout(policy_, tok_, prompts, k, o_.sampling, iteration_seed(o_.seed, (uint64_t)iter_), reward_);
  const Tensor &score = r.scores;

  // 2. Keep the best of each prompt by the learned reward.
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

  // 3. SFT on the kept responses: -mean log pi(y_t | x, y_<t) over a minibatch's response tokens
  //    (temperature 1: plain likelihood, as in instruction tuning); each micro-batch weighs its
  //    share of those tokens.
  const std::vector<double> row_tokens = kept.response_mask.sum({1}).to_vector<double>();
  double loss_sum = 0;
  int64_t n_mb = 0;
  optim::Optimization::Stats st;
  for (int64_t epoch = 0; epoch < o_.sft_epochs; ++epoch) {
    std::vector<size_t> perm = shuffled_indices((size_t)n, minibatch_seed(o_.seed, (uint64_t)(iter_ * o_.sft_epochs + epoch)));
    for (int64_t start = 0; start < n; start += o_.minibatch_size) {
      const std::vector<size_t> minibatch(perm.begin() + start, perm.begin() + std::min(n, start + o_.minibatch_size));
      for (const std::vector<size_t> &part : micro_batches(minibatch, o_.loop.gradient_accumulation_steps)) {
        nn::GenerationOutput mb = select_rows(kept, std::vector<int64_t>(part.begin(), part.end()));
        const double w = share(sum_rows(row_tokens, part), sum_rows(row_tokens, minibatch));
        Tensor loss = sft_loss(response_logprobs(policy_, mb, 1.0), mb.response_mask);
        (loss * w).backward();
        loss_sum += loss.item() * w;
      }
      st = opt_.step(updates_++);
      ++n_mb;
    }
  }

  loss_sum = sum_over_ranks({{"loss", loss_sum}}).at("loss");  // each rank's micro-batches' share
  Metrics m;
  NoGradGuard ng;
  const double T = o_.sampling.temperature;
  Tensor kl = (kl_k1(response_logprobs(policy_, kept, T), response_logprobs(ref_, kept, T)) * kept.response_mask).sum({1});
  m["objective/scores"] = score.mean().item();
  m["raft/kept_scores"] = kept_sum / (double)n;
  m["objective/kl"] = kl.mean().item();
  m["loss"] = loss_sum / (double)n_mb;
  m.merge(rollout_metrics(r));
  m["lr"] = st.lr;
  m["grad_norm"] = st.grad_norm;
  ++iter_;
  return m;
}

Metrics run_raft(const RaftConfig &cfg, bool quiet) {
  PolicyRun run("raft", cfg.run, cfg.sampling.max_new_tokens, cfg.seed, cfg.device, quiet);
  NR_CHECK(run.rm, "raft: reward_model is empty; RAFT ranks by the learned reward");
  RaftTrainer tr(*run.sft.model, *run.ref, reward_model_fn(*run.rm), run.sft.tokenizer, cfg);
  return train_on_prompts(run, tr, cfg, raft_options(), "raft/kept_scores");
}

}  // namespace nanorlhf::rlhf
