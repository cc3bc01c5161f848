// Loading a policy run's inputs, the prompt stream, the oracle evaluation and the final save.
#include "rlhf/policy_run.h"

#include <algorithm>
#include <cstdio>

#include "nn/checkpoint.h"
#include "rlhf/data.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

const OptionTable<PolicyRunOptions> &policy_run_options() {
  using O = PolicyRunOptions;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("policy", &O::policy, "SFT run directory or Hugging Face GPT-2 folder: the initial policy and the frozen reference")
        .add("reward_model", &O::reward_model, "reward-model run directory (the training reward)")
        .add("prompts", &O::prompts, "training prompts: JSONL of {\"prompt\": ...}")
        .add("eval_prompts", &O::eval_prompts, "held-out prompts for the oracle evaluation; empty = none")
        .add("world", &O::world, "world directory (world.json) of the oracle; evaluation only; empty = none")
        .add("eval_size", &O::eval_size, "held-out prompts evaluated; 0 = all", Range::at_least(0))
        .add("eval_max_new_tokens", [](O &o) -> auto & { return o.eval.max_new_tokens; },
             "response tokens in the oracle evaluation (as `nanorlhf eval`)", Range::at_least(1))
        .add("eval_temperature", [](O &o) -> auto & { return o.eval.temperature; },
             "sampling temperature of the oracle evaluation (as `nanorlhf eval`)", Range::above(0))
        .add("eval_seed", [](O &o) -> auto & { return o.eval.seed; },
             "sampling seed of the oracle evaluation (the same for the policy and SFT)", Range::at_least(0))
        .add("out", &O::out, "run directory")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("resume", &O::resume, kResumeHelp);
    return t;
  }();
  return t;
}

const OptionTable<SamplingOptions> &sampling_options() {
  using O = SamplingOptions;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("max_new_tokens", &O::max_new_tokens, "response tokens sampled per prompt", Range::at_least(1))
        .add("temperature", &O::temperature, "sampling temperature, also used in every log-prob", Range::above(0))
        .add("missing_eos_penalty", &O::missing_eos_penalty,
             "subtracted from the score of a response without <|eos|>", Range::at_least(0));
    return t;
  }();
  return t;
}

PolicyRunOptions without_unused_reward_model(PolicyRunOptions o, const RewardOptions &rewards) {
  if (!rewards.uses("reward_model")) o.reward_model.clear();
  return o;
}

optim::OptimConfig policy_optim(double lr) {
  return {.lr = lr, .weight_decay = 0.0, .warmup = 0, .schedule = "constant"};
}

PolicyRun::PolicyRun(const std::string &stage_name, const PolicyRunOptions &o, int64_t max_new_tokens, uint64_t seed,
                     const std::string &device_name, bool quiet)
    : stage(stage_name), options(o), device(Device::parse(device_name)), quiet_(quiet) {
  manual_seed(seed);
  sft = load_run<nn::GPT>(o.policy, device);
  ref = frozen_copy(*sft.model);
  sft.model->eval();  // dropout off everywhere
  // Prompts must leave room for the response in the context (training and held-out ones alike).
  auto read_prompts = [&](const std::string &path, int64_t room) {
    std::vector<std::string> out;
    for (auto &p : read_prompts_jsonl(path)) {
      longest_prompt = std::max<int64_t>(longest_prompt, (int64_t)sft.tokenizer.encode_prompt(p.prompt).size());
      out.push_back(p.prompt);
    }
    NR_CHECK(!out.empty(), "{}: no prompts", path);
    NR_CHECK(longest_prompt + room <= sft.model->config.ctx,
             "{}: the longest prompt ({} tokens) + max_new_tokens ({}) exceeds the policy's context ({})", path,
             longest_prompt, room, sft.model->config.ctx);
    return out;
  };
  if (!o.prompts.empty()) {
    prompts_ = read_prompts(o.prompts, max_new_tokens);
    sampler_.emplace(prompts_.size(), 1, seed, ShortBatch::kFillFromNext);
    state.add("prompts", *sampler_);
  }
  state.add("model", *sft.model);
  if (!o.world.empty() && !o.eval_prompts.empty()) {
    oracle_ = Oracle::from_world_dir(o.world);
    eval_prompts_ = read_prompts(o.eval_prompts, o.eval.max_new_tokens);
    if (o.eval_size > 0 && (int64_t)eval_prompts_.size() > o.eval_size) eval_prompts_.resize((size_t)o.eval_size);
  }
  if (!o.reward_model.empty()) {
    LoadedRun<nn::ScalarModel> loaded = load_run<nn::ScalarModel>(o.reward_model, device);
    rm = loaded.model;
    // Same size is not the same tokenizer: a reward model must read the policy's tokens as they are.
    NR_CHECK(loaded.tokenizer == sft.tokenizer,
             "{}: the reward model {} uses another tokenizer than the policy {} ({} vs {}{}); train both from the "
             "same pretraining run", stage, o.reward_model, o.policy, loaded.tokenizer.describe(),
             sft.tokenizer.describe(),
             loaded.tokenizer.describe() == sft.tokenizer.describe() ? ", the same count but different merges" : "");
    // It scores the rollouts and, next to the oracle, the evaluation's responses (cut at the context).
    const int64_t eval_len = oracle_ ? std::min(sft.model->config.ctx, longest_prompt + o.eval.max_new_tokens) : 0;
    check_reward_model_fits(sft.model->config, rm->backbone->config, nn::checkpoint_file(o.reward_model),
                            std::max(longest_prompt + max_new_tokens, eval_len));
    rm->requires_grad_(false);
  }
}

void PolicyRun::use_reference(const std::string &dir) {
  LoadedModel r = load_run<nn::GPT>(dir, device);
  const nn::GPT &policy = *sft.model;
  NR_CHECK(r.model->config.vocab == policy.config.vocab && r.tokenizer == sft.tokenizer,
           "{}: reference {} (model {}, {}{}) does not read the policy's tokens (model {}, {})", stage, dir,
           r.model->config.to_json().dump(), r.tokenizer.describe(),
           r.tokenizer.describe() == sft.tokenizer.describe() && !(r.tokenizer == sft.tokenizer)
               ? ", the same count but different merges"
               : "",
           policy.config.to_json().dump(), sft.tokenizer.describe());
  ref = frozen_copy(*r.model);
}

RunDir &PolicyRun::begin(nlohmann::json resolved) {
  resolved["model"] = sft.model->config.to_json();
  resolved["stage"] = stage;
  resolved_ = std::move(resolved);
  run_ = std::make_unique<RunDir>(options.out, options.overwrite, options.resume);
  run_->write_config(resolved_);
  return *run_;
}

std::vector<std::string> PolicyRun::next_prompts(int64_t n) {
  NR_CHECK(sampler_, "{}: no training prompts", stage);
  std::vector<std::string> out;
  while ((int64_t)out.size() < n) out.push_back(prompts_[sampler_->next()[0]]);
  return out;
}

TrainingLoop PolicyRun::loop(const LoopOptions &o, const std::string &headline) {
  return {.task = stage, .options = o, .shown = {"objective/scores", "objective/kl", "loss", headline},
          .last_value = {"lr", "epoch"}, .quiet = quiet_, .state = &state};
}

Metrics PolicyRun::evaluate(int64_t step) {
  Metrics m;
  if (!oracle_ || eval_prompts_.empty()) return m;
  EvalResult r = rlhf::evaluate(*sft.model, *ref, sft.tokenizer, *oracle_, eval_prompts_, options.eval, rm.get());
  m = eval_metrics(r);
  nlohmann::json rec = {{"step", step}};
  for (auto &[k, v] : m) rec[k] = v;
  run_->log_metrics(rec);
  run_->write_text("samples.txt", side_by_side(r, 12));  // rewritten at each evaluation
  sft.model->eval();
  return m;
}

Metrics PolicyRun::finish(int64_t steps) {
  Metrics m = evaluate(steps);
  if (!quiet_ && !m.empty())
    std::fprintf(stderr, "%s: oracle %.3f (sft %.3f), win rate vs sft %.3f, KL to sft %.3f\n", stage.c_str(),
                 m["eval/oracle_reward"], m["eval/ref_oracle_reward"], m["eval/win_rate_vs_sft"], m["eval/kl_to_ref"]);
  save_run(run_->root(), *sft.model, sft.tokenizer, resolved_, {{"step", steps}, {"stage", stage}});
  run_->commit();
  return m;
}

}  // namespace nanorlhf::rlhf
