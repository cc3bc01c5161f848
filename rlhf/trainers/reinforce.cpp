// REINFORCE with a moving-average or RLOO baseline, read top to bottom in ReinforceTrainer::step;
// the reward function, frozen reference and oracle evaluation that the other sampling trainers reuse.
#include "rlhf/trainers/reinforce.h"

#include <algorithm>
#include <cmath>

#include "nn/checkpoint.h"
#include "nn/generation.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"
#include "rlhf/trainers/reward_model.h"

namespace nanorlhf::rlhf {

RewardFn reward_model_fn(const nn::ScalarModel &rm) {
  return [&rm](const Rollout &r) {
    NoGradGuard ng;
    return reward_scores(rm, r.gen);
  };
}

std::shared_ptr<nn::GPT> frozen_copy(const nn::GPT &policy) {
  auto ref = std::make_shared<nn::GPT>(policy.config);
  ref->to(policy.wte->weight.device());
  ref->copy_from(policy);
  ref->eval();
  ref->requires_grad_(false);
  return ref;
}

void check_reward_model_fits(const nn::GPTConfig &policy, const nn::GPTConfig &rm, const std::string &what,
                             int64_t rollout_len) {
  NR_CHECK(rm.vocab == policy.vocab,
           "reward model {}: its vocabulary ({} tokens, model {}) does not match the policy's ({} tokens, model {}); "
           "train both from the same tokenizer",
           what, rm.vocab, rm.to_json().dump(), policy.vocab, policy.to_json().dump());
  NR_CHECK(rm.ctx >= rollout_len,
           "reward model {}: its context ctx = {} cannot hold a rollout of up to {} tokens (policy model {})", what,
           rm.ctx, rollout_len, policy.to_json().dump());
}

ReinforceTrainer::ReinforceTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok,
                                   ReinforceOptions opts)
    : policy_(policy), ref_(ref), reward_(std::move(reward)), tok_(tok), o_(std::move(opts)), opt_(policy, o_.optim) {
  NR_CHECK(o_.beta >= 0, "reinforce: beta must be >= 0, got {}", o_.beta);
  NR_CHECK(o_.rloo_k >= 1, "reinforce: rloo_k must be >= 1, got {}", o_.rloo_k);
  NR_CHECK(o_.sampling.temperature > 0, "reinforce: temperature must be > 0, got {}", o_.sampling.temperature);
  NR_CHECK(o_.baseline_decay >= 0 && o_.baseline_decay < 1, "reinforce: baseline_decay must be in [0, 1), got {}",
           o_.baseline_decay);
}

Metrics ReinforceTrainer::step(const std::vector<std::string> &prompts) {
  const int64_t k = o_.rloo_k;
  const double T = o_.sampling.temperature;
  policy_.eval();  // dropout off everywhere, also while training (N implementation details)

  // 1. Rollout: each prompt k times in consecutive rows (RLOO groups them). [B = |prompts| k]
  std::vector<std::string> batch;
  for (const auto &p : prompts)
    for (int64_t j = 0; j < k; ++j) batch.push_back(p);
  nn::GenerationConfig g;
  g.max_new_tokens = o_.sampling.max_new_tokens;
  g.temperature = T;
  g.seed = o_.seed * 1000003ULL + (uint64_t)iter_;
  last_ = sample_responses(policy_, tok_, batch, g);
  const nn::GenerationOutput &gen = last_.gen;

  // 2. Score with the reward function; responses that never ended pay the missing-EOS penalty. [B]
  Tensor score = apply_missing_eos_penalty(reward_(last_), gen.finished, o_.sampling.missing_eos_penalty);

  // 3. log pi_ref(y|x) (frozen, no graph) and log pi_theta(y|x) (with graph). [B]
  Tensor ref_logp_sum;
  {
    NoGradGuard ng;
    ref_logp_sum = response_logprobs(ref_, gen, T).sum({1});
  }
  Tensor logp_sum = response_logprobs(policy_, gen, T).sum({1});

  // 4. R = r - beta log(pi/pi_ref) (detached), then the baseline.
  Tensor R = sequence_rlhf_reward(score, logp_sum, ref_logp_sum, o_.beta);
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
  Optimization::Stats st = opt_.step(iter_);

  Metrics m;
  {
    NoGradGuard ng;
    Tensor kl = kl_k1(logp_sum.detach(), ref_logp_sum);  // sequence-level k1 [B]
    double n_eos = (double)std::count(gen.finished.begin(), gen.finished.end(), true);
    m["objective/scores"] = score.mean().item();
    m["objective/kl"] = kl.mean().item();
    m["objective/entropy"] = (-logp_sum.detach()).mean().item();  // TRL: mean of -log pi(y|x)
    m["objective/rlhf_reward"] = R_mean;
    m["loss"] = loss.item();
    m["baseline"] = baseline_used;
    m["val/eos_frac"] = n_eos / (double)gen.finished.size();
    m["val/response_len"] = gen.response_mask.sum().item() / (double)gen.finished.size();
    m["grad_norm"] = st.grad_norm;
    m["lr"] = st.lr;
  }
  ++iter_;
  return m;
}

// ---- loading and the run around the iterations ----

std::vector<ConfigKey> sampling_trainer_keys(const std::string &name) {
  std::vector<ConfigKey> s = {
      {"policy", "runs/sft", "SFT run directory: the initial policy and the frozen reference"},
      {"reward_model", "runs/rm", "reward-model run directory (the training reward)"},
      {"prompts", "data/prompts.jsonl", "training prompts: JSONL of {\"prompt\": ...}"},
      {"eval_prompts", "data/eval_prompts.jsonl", "held-out prompts for the oracle evaluation; empty = none"},
      {"world", "data", "world directory (world.json) of the oracle; evaluation only; empty = none"},
      {"eval_size", 128, "held-out prompts evaluated; 0 = all", 0.0},
      {"eval_every", 0, "iterations between evaluations; 0 = at the end only", 0.0},
      {"eval_max_new_tokens", 48, "response tokens in the oracle evaluation (as `nanorlhf eval`)", 1.0},
      {"eval_temperature", 1.0, "sampling temperature of the oracle evaluation (as `nanorlhf eval`)", 0.0,
       std::nullopt, true},
      {"eval_seed", 1, "sampling seed of the oracle evaluation (the same for the policy and SFT)", 0.0},
      {"out", "runs/" + name, "run directory"},
      {"max_new_tokens", 24, "response tokens sampled per prompt", 1.0},
      {"temperature", 1.0, "sampling temperature, also used in every log-prob", 0.0, std::nullopt, true},
      {"missing_eos_penalty", 1.0, "subtracted from the score of a response without <|eos|>", 0.0},
      {"beta", 0.05, "KL coefficient of r - beta log(pi/pi_ref)", 0.0},
  };
  for (auto &k : train_config_keys()) {
    if (k.name == "steps") k.help = "iterations (rollout batches)";
    if (k.name == "batch_size") k.help = "prompts per iteration";
    if (k.name == "log_every") k.help = "iterations between metrics.jsonl records";
    s.push_back(k);
  }
  set_default(s, "weight_decay", 0.0);
  set_default(s, "warmup", 0);
  set_default(s, "schedule", "constant");
  set_default(s, "log_every", 1);
  return s;
}

SamplingRun::SamplingRun(const Config &cfg, const std::string &stage_name, bool quiet)
    : c(cfg), stage(stage_name), device(Device::parse(cfg.str("device"))), quiet_(quiet) {
  sampling.max_new_tokens = c.integer("max_new_tokens");
  sampling.temperature = c.num("temperature");
  if (c.has("missing_eos_penalty")) sampling.missing_eos_penalty = c.num("missing_eos_penalty");
  beta = c.has("beta") ? c.num("beta") : 0.0;
  NR_CHECK(beta >= 0, "{}: beta must be >= 0, got {}", stage, beta);
  iterations = c.integer("steps");
  batch_size = c.integer("batch_size");
  seed = (uint64_t)c.integer("seed");
  optim = OptimConfig::from(c);
  manual_seed(seed);

  sft = load_gpt_run(c.str("policy"), device);
  ref = frozen_copy(*sft.model);
  sft.model->eval();  // dropout off everywhere
  // Prompts must leave room for max_new_tokens in the context (training and held-out ones alike).
  int64_t longest = 0;
  auto read_prompts = [&](const std::string &path) {
    std::vector<std::string> out;
    for (auto &p : read_prompts_jsonl(path)) {
      longest = std::max<int64_t>(longest, (int64_t)sft.tokenizer.encode_prompt(p.prompt).size());
      out.push_back(p.prompt);
    }
    NR_CHECK(!out.empty(), "{}: no prompts", path);
    NR_CHECK(longest + sampling.max_new_tokens <= sft.model->config.ctx,
             "{}: the longest prompt ({} tokens) + max_new_tokens ({}) exceeds the policy's context ({})", path,
             longest, sampling.max_new_tokens, sft.model->config.ctx);
    return out;
  };
  if (c.has("prompts")) prompts_ = read_prompts(c.str("prompts"));
  if (!c.str("world").empty() && !c.str("eval_prompts").empty()) {
    oracle_ = Oracle::from_world_dir(c.str("world"));
    eval_opts_.max_new_tokens = c.integer("eval_max_new_tokens");
    eval_opts_.temperature = c.num("eval_temperature");
    eval_opts_.seed = (uint64_t)c.integer("eval_seed");
    std::swap(sampling.max_new_tokens, eval_opts_.max_new_tokens);  // the held-out prompts must fit the eval's length
    eval_prompts_ = read_prompts(c.str("eval_prompts"));
    std::swap(sampling.max_new_tokens, eval_opts_.max_new_tokens);
    int64_t n = c.integer("eval_size");
    if (n > 0 && (int64_t)eval_prompts_.size() > n) eval_prompts_.resize((size_t)n);
  }
  if (c.has("reward_model") && !c.str("reward_model").empty()) {
    rm = load_reward_model(c.str("reward_model"), device).model;  // rlhf/trainers/reward_model.h
    check_reward_model_fits(sft.model->config, rm->backbone->config, nn::checkpoint_file(c.str("reward_model")),
                            longest + sampling.max_new_tokens);
    rm->requires_grad_(false);
  }

  resolved = c.resolved();
  resolved["model"] = sft.model->config.to_json();
  resolved["stage"] = stage;
  run_ = std::make_unique<RunDir>(c.str("out"));
  run_->write_config(resolved);
  progress_ = std::make_unique<Progress>(stage, iterations, quiet ? nullptr : stderr);
}

void SamplingRun::set_iterations(int64_t n) {
  iterations = n;
  progress_ = std::make_unique<Progress>(stage, iterations, quiet_ ? nullptr : stderr);
}

std::vector<std::string> SamplingRun::next_prompts(int64_t n) {
  NR_CHECK(!prompts_.empty(), "{}: no training prompts", stage);
  std::vector<std::string> out;
  while ((int64_t)out.size() < n) {
    if (cursor_ == order_.size()) {
      order_ = shuffled_indices(prompts_.size(), seed * 1000003ULL + (uint64_t)epoch_++);
      cursor_ = 0;
    }
    out.push_back(prompts_[order_[cursor_++]]);
  }
  return out;
}

void SamplingRun::log(int64_t iteration, const Metrics &m, const std::string &headline) {
  nlohmann::json rec = {{"step", iteration + 1}};
  for (auto &[k, v] : m) rec[k] = v;
  if ((iteration + 1) % std::max<int64_t>(1, c.integer("log_every")) == 0 || iteration + 1 == iterations)
    run_->log_metrics(rec);
  std::map<std::string, double> shown;
  for (const char *k : {"objective/scores", "objective/kl", "loss"})
    if (m.count(k)) shown[k] = m.at(k);
  if (m.count(headline)) shown[headline] = m.at(headline);
  progress_->update(iteration + 1, shown);
}

bool SamplingRun::should_evaluate(int64_t iteration) const {
  int64_t every = c.integer("eval_every");
  return oracle_ && every > 0 && (iteration + 1) % every == 0 && iteration + 1 < iterations;
}

Metrics SamplingRun::evaluate(int64_t step) {
  Metrics m;
  if (!oracle_ || eval_prompts_.empty()) return m;
  EvalResult r = rlhf::evaluate(*sft.model, *ref, sft.tokenizer, *oracle_, eval_prompts_, eval_opts_);
  m["eval/oracle_reward"] = r.oracle_reward;
  m["eval/ref_oracle_reward"] = r.ref_oracle_reward;
  m["eval/win_rate_vs_sft"] = r.win_rate;
  m["eval/kl_to_ref"] = r.kl_to_ref;
  m["eval/response_length"] = r.response_length;
  m["eval/finished"] = r.finished;
  m["eval/helpful"] = r.helpful;
  m["eval/honest"] = r.honest;
  m["eval/harmless"] = r.harmless;
  nlohmann::json rec = {{"step", step}};
  for (auto &[k, v] : m) rec[k] = v;
  run_->log_metrics(rec);
  run_->write_text("samples.txt", side_by_side(r, 12));  // rewritten at each evaluation
  sft.model->eval();
  return m;
}

Metrics SamplingRun::finish() {
  progress_->done();
  Metrics m = evaluate(iterations);
  if (!quiet_ && !m.empty())
    std::fprintf(stderr, "%s: oracle %.3f (sft %.3f), win rate vs sft %.3f, KL to sft %.3f\n", stage.c_str(),
                 m["eval/oracle_reward"], m["eval/ref_oracle_reward"], m["eval/win_rate_vs_sft"], m["eval/kl_to_ref"]);
  save_gpt_run(c.str("out"), *sft.model, sft.tokenizer, resolved, {{"step", iterations}, {"stage", stage}});
  return m;
}

std::vector<ConfigKey> reinforce_schema() {
  std::vector<ConfigKey> s = sampling_trainer_keys("reinforce");
  s.push_back({"rloo_k", 1, "samples per prompt; >= 2 uses the RLOO leave-one-out baseline", 1.0});
  s.push_back({"baseline_decay", 0.9, "moving-average baseline decay (rloo_k = 1)", 0.0, 1.0});
  set_default(s, "steps", 40);
  set_default(s, "batch_size", 32);
  set_default(s, "lr", 3e-5);
  return s;
}

Metrics run_reinforce(const Config &c, bool quiet) {
  SamplingRun run(c, "reinforce", quiet);
  NR_CHECK(run.rm, "reinforce: reward_model is empty; REINFORCE trains on the learned reward");
  ReinforceOptions o;
  o.batch_size = run.batch_size;
  o.rloo_k = c.integer("rloo_k");
  o.beta = run.beta;
  o.baseline_decay = c.num("baseline_decay");
  o.sampling = run.sampling;
  o.optim = run.optim;
  o.optim.steps = run.iterations;  // one gradient step per iteration
  o.seed = run.seed;
  ReinforceTrainer tr(*run.sft.model, *run.ref, reward_model_fn(*run.rm), run.sft.tokenizer, o);
  for (int64_t it = 0; it < run.iterations; ++it) {
    Metrics m = tr.step(run.next_prompts(o.batch_size));
    run.log(it, m, "objective/rlhf_reward");
    if (run.should_evaluate(it)) run.evaluate(it + 1);
  }
  return run.finish();
}

}  // namespace nanorlhf::rlhf
