// KTO: tokenised unpaired examples, summed completion log-probs, the reference's log-probs computed
// once, the reference point from mismatched pairs, and one gradient step read top to bottom in
// KTOTrainer::compute.
#include "rlhf/trainers/kto.h"

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "nn/losses.h"
#include "rlhf/batching.h"
#include "nn/distributed.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

const OptionTable<KTOConfig> &kto_options() {
  using O = KTOConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.remove("prompts").remove("reward_model")
        .help("steps", "optimizer steps; 0 = epochs over the examples")
        .range("steps", Range::at_least(0))
        .help("batch_size", "examples per step; >= 2: the KL reference point pairs each prompt with another "
                            "example's completion")
        .range("batch_size", Range::at_least(2))
        .help("log_every", "steps between metrics.jsonl records")
        .help("eval_every", "steps between oracle evaluations; 0 = at the end only")
        .add("data", &O::data,
             "JSONL of unpaired {\"prompt\", \"completion\", \"label\": true|false}, or of preference pairs "
             "{\"prompt\", \"chosen\", \"rejected\"} (chosen = desirable, rejected = undesirable)")
        .add("ref", &O::ref, "run directory (or Hugging Face GPT-2 folder) of the frozen reference; empty = the initial policy")
        .add("unpaired_out", &O::unpaired_out,
             "also write the examples read from data as unpaired JSONL to this path; empty = none")
        .add("beta", &O::beta, "KTO beta: strength of the pull towards the reference", Range::above(0))
        .add("desirable_weight", &O::desirable_weight, "lambda_D: weight of the desirable examples' losses",
             Range::at_least(0))
        .add("undesirable_weight", &O::undesirable_weight, "lambda_U: weight of the undesirable examples' losses",
             Range::at_least(0))
        .add("epochs", &O::epochs, "passes over the examples when steps = 0", Range::at_least(1));
    return t;
  }();
  return t;
}

std::string kto_weight_warning(int64_t n_d, int64_t n_u, double w_d, double w_u) {
  if (n_d == 0 || n_u == 0)
    return fmt::format("only {} examples ({} desirable, {} undesirable): KTO's reference point is still estimated, "
                       "but nothing pushes the other way", n_d == 0 ? "undesirable" : "desirable", n_d, n_u);
  const double ratio = w_d * (double)n_d / (w_u * (double)n_u);
  if (ratio >= 1.0 && ratio <= 4.0 / 3.0) return "";
  return fmt::format("desirable_weight * n_desirable / (undesirable_weight * n_undesirable) = {} * {} / ({} * {}) "
                     "= {:.3f}, outside the KTO paper's [1, 4/3]; e.g. desirable_weight in [{:.3g}, {:.3g}]",
                     w_d, n_d, w_u, n_u, ratio, w_u * (double)n_u / (double)n_d,
                     4.0 / 3.0 * w_u * (double)n_u / (double)n_d);
}

Tensor unpaired_logprobs(const nn::GPT &model, const std::vector<UnpairedExample> &examples,
                         const std::vector<size_t> &prompt_of, const std::vector<size_t> &completion_of,
                         int64_t pad_id) {
  NR_CHECK(prompt_of.size() == completion_of.size(), "unpaired_logprobs: {} prompts but {} completions",
           prompt_of.size(), completion_of.size());
  std::vector<std::vector<int64_t>> seqs;
  std::vector<std::vector<float>> masks;
  for (size_t j = 0; j < prompt_of.size(); ++j) {
    const std::vector<int64_t> &x = examples.at(prompt_of[j]).prompt_ids, &y = examples.at(completion_of[j]).completion_ids;
    const size_t room = (size_t)model.config.ctx - std::min(x.size(), (size_t)model.config.ctx);
    std::vector<int64_t> s = x;
    s.insert(s.end(), y.begin(), y.begin() + (std::ptrdiff_t)std::min(y.size(), room));
    std::vector<float> m(x.size(), 0.f);
    m.resize(s.size(), 1.f);
    seqs.push_back(std::move(s));
    masks.push_back(std::move(m));
  }
  TokenBatch b = pad_batch(seqs, masks, pad_id, /*left_pad=*/false);
  const Device dev = model.wte->weight.device();
  Tensor ids = from_vector<int64_t>(b.input_ids, {b.batch, b.seq}).to(dev);      // [rows, L]
  Tensor attn = from_vector<float>(b.attention_mask, {b.batch, b.seq}).to(dev);  // [rows, L]
  Tensor lmask = from_vector<float>(b.loss_mask, {b.batch, b.seq}).to(dev);      // [rows, L]
  return nn::sequence_logprobs(model, ids, attn, lmask);                          // [rows]
}

std::vector<size_t> kl_completions(const std::vector<size_t> &idx) {
  std::vector<size_t> c(idx.size());
  for (size_t j = 0; j < idx.size(); ++j) c[j] = idx[(j + idx.size() - 1) % idx.size()];
  return c;
}

namespace {
std::vector<UnpairedExample> at_least_two(std::vector<UnpairedExample> examples) {
  NR_CHECK(examples.size() >= 2, "kto: {} examples; KTO needs at least 2 (the KL reference point pairs each prompt "
           "with another example's completion)", examples.size());
  return examples;
}
}  // namespace

KTOTrainer::KTOTrainer(nn::GPT &policy, const nn::GPT &ref, std::vector<UnpairedExample> examples, int64_t pad_id,
                       KTOConfig opts)
    : policy_(policy),
      ref_(ref),
      examples_(at_least_two(std::move(examples))),
      pad_id_(pad_id),
      o_((kto_options().check(opts, "kto"), std::move(opts))),
      total_steps_(o_.loop.steps > 0 ? o_.loop.steps : o_.epochs * steps_per_epoch()),
      opt_(policy, o_.optim, total_steps_) {
  check_accumulation("kto", o_.batch_size, o_.loop.gradient_accumulation_steps, "examples (batch_size)");
  policy_.eval();  // dropout off
  // The reference never changes: its log-probs of every matched example once, without a graph.
  NoGradGuard ng;
  ref_logps_.resize(examples_.size());
  for (size_t s = 0; s < examples_.size(); s += (size_t)o_.batch_size) {
    std::vector<size_t> idx = index_range(s, std::min(examples_.size(), s + (size_t)o_.batch_size));
    std::vector<double> lp = unpaired_logprobs(ref_, examples_, idx, idx, pad_id_).to_vector<double>();
    for (size_t j = 0; j < idx.size(); ++j) ref_logps_[idx[j]] = lp[j];
  }
  const int64_t n_d = std::count_if(examples_.begin(), examples_.end(), [](const auto &e) { return e.label; });
  warning_ = kto_weight_warning(n_d, (int64_t)examples_.size() - n_d, o_.desirable_weight, o_.undesirable_weight);
}

int64_t KTOTrainer::steps_per_epoch() const {
  return ((int64_t)examples_.size() + o_.batch_size - 1) / o_.batch_size;
}

void KTOTrainer::register_state(TrainState &state) {
  state.add("optimizer", opt_).add("step", step_);
}

// KTO's loss is a mean over the batch's examples, around z0 of the whole batch: z0 first, then the
// micro-batches, each weighing its share of the examples.
Metrics KTOTrainer::step(const std::vector<size_t> &idx) {
  const Tensor z0 = reference_point(idx);
  const double n = (double)idx.size();
  const double n_d = (double)std::count_if(idx.begin(), idx.end(), [&](size_t i) { return examples_[i].label; });
  AccumulatedMetrics acc;
  for (const std::vector<size_t> &part : micro_batches(idx, o_.loop.gradient_accumulation_steps)) {
    const double w = share((double)part.size(), n);
    Metrics pm = compute(part, z0, w);
    const double pd = pm.at("count/chosen"), pu = pm.at("count/rejected");
    for (const auto &[k, v] : pm) {  // a mean over one label's examples weighs that label's share
      if (k.starts_with("count/") || k == "rewards/margins") continue;
      acc.add(k, v, k.ends_with("/chosen") ? share(pd, n_d) : k.ends_with("/rejected") ? share(pu, n - n_d) : w);
    }
  }
  optim::Optimization::Stats st = opt_.step(step_++);
  Metrics m = acc.result();
  m["count/chosen"] = n_d;
  m["count/rejected"] = n - n_d;
  if (m.contains("rewards/chosen") && m.contains("rewards/rejected"))
    m["rewards/margins"] = m["rewards/chosen"] - m["rewards/rejected"];
  m["lr"] = st.lr;
  m["grad_norm"] = st.grad_norm;
  return m;
}

Metrics KTOTrainer::evaluate(const std::vector<size_t> &idx) {
  NoGradGuard ng;
  return compute(idx, reference_point(idx), 0);
}

// z0 from the batch's mismatched pairs, policy and reference, without a graph; the log-probs in
// this rank's micro-batches (memory stays that of one), then gathered from every rank.
Tensor KTOTrainer::reference_point(const std::vector<size_t> &idx) {
  NR_CHECK(idx.size() >= 2, "kto: a batch of {} example(s); the KL reference point needs batch_size >= 2",
           idx.size());
  NoGradGuard ng;
  const std::vector<size_t> y_other = kl_completions(idx);
  std::vector<double> lp, ref_lp;
  TensorOptions like{kFloat32, policy_.wte->weight.device()};
  const int64_t A = o_.loop.gradient_accumulation_steps;
  for (const std::vector<size_t> &part : micro_batches(index_range(0, idx.size()), A)) {
    std::vector<size_t> x, y;
    for (size_t j : part) x.push_back(idx[j]), y.push_back(y_other[j]);
    Tensor p = unpaired_logprobs(policy_, examples_, x, y, pad_id_);
    like.dtype = p.dtype();
    for (double v : p.to_vector<double>()) lp.push_back(v);
    for (double v : unpaired_logprobs(ref_, examples_, x, y, pad_id_).to_vector<double>()) ref_lp.push_back(v);
  }
  lp = dist::all_gather(lp);  // the ranks' shards, in order
  ref_lp = dist::all_gather(ref_lp);
  const int64_t n = (int64_t)idx.size();
  return kto_reference_point(from_vector<double>(lp, {n}, like), from_vector<double>(ref_lp, {n}, like));
}

Metrics KTOTrainer::compute(const std::vector<size_t> &idx, const Tensor &z0, double weight) {
  const int64_t b = (int64_t)idx.size();
  policy_.eval();
  // 1. log pi_theta of each completion given its own prompt (summed over tokens). [b]
  Tensor lp = unpaired_logprobs(policy_, examples_, idx, idx, pad_id_);
  // 2. z0: reference_point() of the whole batch.
  // 3. The KTO loss on the reference's precomputed log-probs.
  std::vector<double> rl;
  std::vector<bool> desirable;
  for (size_t i : idx) {
    rl.push_back(ref_logps_[i]);
    desirable.push_back(examples_[i].label);
  }
  Tensor ref_lp = from_vector<double>(rl, {b}).to(lp.dtype()).to(lp.device());
  KTOLoss kt = kto_loss(lp, ref_lp, desirable, z0, o_.beta, o_.desirable_weight, o_.undesirable_weight);
  // 4. This micro-batch's share of the step's gradient.
  if (weight > 0) (kt.loss * weight).backward();
  Metrics m;
  NoGradGuard ng;
  const int64_t n_d = std::count(desirable.begin(), desirable.end(), true), n_u = b - n_d;
  std::vector<double> logp = lp.detach().to_vector<double>();
  auto mean_logp = [&](bool label) {
    double s = 0;
    for (size_t j = 0; j < idx.size(); ++j) s += desirable[j] == label ? logp[j] : 0.0;
    return s / (double)(label ? n_d : n_u);
  };
  m["loss"] = kt.loss.item();
  m["kl"] = kt.kl.item();
  m["count/chosen"] = (double)n_d;
  m["count/rejected"] = (double)n_u;
  if (n_d > 0) {
    m["rewards/chosen"] = kt.chosen_rewards.mean().item();
    m["logps/chosen"] = mean_logp(true);
  }
  if (n_u > 0) {
    m["rewards/rejected"] = kt.rejected_rewards.mean().item();
    m["logps/rejected"] = mean_logp(false);
  }
  if (n_d > 0 && n_u > 0) m["rewards/margins"] = m["rewards/chosen"] - m["rewards/rejected"];
  return m;
}

// ---- the command-line trainer ----

Metrics run_kto(const KTOConfig &cfg, bool quiet) {
  // The policy and its frozen copy, the held-out prompts and the oracle.
  PolicyRun run("kto", cfg.run, 0, cfg.seed, cfg.device, quiet);
  nn::GPT &policy = *run.sft.model;
  const nn::Tokenizer &tok = run.sft.tokenizer;
  if (!cfg.ref.empty()) run.use_reference(cfg.ref);  // also the evaluation's baseline
  const int64_t micro = cfg.batch_size / std::max<int64_t>(1, cfg.loop.gradient_accumulation_steps);
  nn::check_fits_in_memory(nn::training_step_bytes(policy.config, 2 * micro, policy.config.ctx),
                           fmt::format("kto: a micro-batch of {} examples (batch_size {} / gradient_accumulation_steps "
                                       "{}, and as many mismatched pairs) of up to ctx {} tokens", micro,
                                       cfg.batch_size, cfg.loop.gradient_accumulation_steps, policy.config.ctx));
  std::vector<UnpairedExample> examples = read_kto_examples(cfg.data, tok, policy.config.ctx);
  NR_CHECK(!examples.empty(), "{}: no examples", cfg.data);
  if (!cfg.unpaired_out.empty()) write_unpaired_jsonl(cfg.unpaired_out, examples);
  KTOTrainer tr(policy, *run.ref, std::move(examples), tok.pad_id(), cfg);
  if (!tr.weight_warning().empty()) fmt::print(stderr, "kto: warning: {}\n", tr.weight_warning());

  // Every batch full (topped up from the next epoch), so the mismatched pairs never run short.
  return train_on_dataset(run, tr, cfg, kto_options(), "rewards/margins", ShortBatch::kFillFromNext);
}

}  // namespace nanorlhf::rlhf
