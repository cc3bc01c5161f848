// DPO and kin: tokenised pairs, summed completion log-probs, the reference's log-probs computed once,
// and one gradient step read top to bottom in DPOTrainer::compute.
#include "rlhf/trainers/dpo.h"

#include <algorithm>
#include <cmath>

#include "nn/losses.h"
#include "nn/distributed.h"
#include "rlhf/batching.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

const std::vector<std::string> &dpo_loss_types() {
  static const std::vector<std::string> t = {"sigmoid", "ipo", "hinge", "simpo"};
  return t;
}

void DPOConfig::validate() const {
  NR_CHECK(label_smoothing == 0 || loss_type == "sigmoid",
           "dpo: label_smoothing (cDPO) applies to loss_type sigmoid only, got loss_type '{}'", loss_type);
}

const OptionTable<DPOConfig> &dpo_options() {
  using O = DPOConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = policy_trainer_options<O>();
    t.remove("prompts").remove("reward_model")
        .help("steps", "optimizer steps; 0 = epochs over the pairs")
        .range("steps", Range::at_least(0))
        .help("batch_size", "preference pairs per step")
        .help("log_every", "steps between metrics.jsonl records")
        .help("eval_every", "steps between oracle evaluations; 0 = at the end only")
        .add("data", &O::data, "preference pairs: JSONL of {\"prompt\", \"chosen\", \"rejected\"}")
        .add("ref", &O::ref, "run directory (or Hugging Face GPT-2 folder) of the frozen reference; empty = the initial policy")
        .add("beta", &O::beta, "DPO beta (IPO tau, hinge beta): strength of the pull towards the reference",
             Range::above(0))
        .add("loss_type", &O::loss_type,
             "sigmoid (DPO), ipo, hinge (SLiC-HF) or simpo (reference-free; drifts faster: use lr ~1e-5)", {},
             dpo_loss_types())
        .add("label_smoothing", &O::label_smoothing, "cDPO: the assumed share of flipped labels (sigmoid only)",
             Range::between(0, 0.49))
        .add("simpo_beta", &O::simpo_beta, "SimPO beta (reward = beta * mean token log-prob)", Range::above(0))
        .add("simpo_gamma", &O::simpo_gamma, "SimPO target margin gamma", Range::at_least(0))
        .add("rpo_alpha", &O::rpo_alpha, "RPO: weight of the chosen answers' per-token NLL added to the loss; 0 = off",
             Range::at_least(0))
        .add("epochs", &O::epochs, "passes over the pairs when steps = 0", Range::at_least(1));
    return t;
  }();
  return t;
}

// Rows [chosen of idx..., rejected of idx...], right-padded; loss mask 1 on completion tokens.
Tensor pair_logprobs(const nn::GPT &model, const std::vector<PreferencePair> &pairs, const std::vector<size_t> &idx,
                     int64_t pad_id, Tensor *lengths) {
  std::vector<std::vector<int64_t>> seqs;
  std::vector<std::vector<float>> masks;
  for (int side = 0; side < 2; ++side)
    for (size_t i : idx) {
      const PreferencePair &p = pairs.at(i);
      const std::vector<int64_t> &y = side == 0 ? p.chosen_ids : p.rejected_ids;
      std::vector<int64_t> s = p.prompt_ids;
      s.insert(s.end(), y.begin(), y.end());
      std::vector<float> m(p.prompt_ids.size(), 0.f);
      m.resize(s.size(), 1.f);
      seqs.push_back(std::move(s));
      masks.push_back(std::move(m));
    }
  TokenBatch b = pad_batch(seqs, masks, pad_id, /*left_pad=*/false);
  const Device dev = model.wte->weight.device();
  Tensor ids = from_vector<int64_t>(b.input_ids, {b.batch, b.seq}).to(dev);       // [2b, L]
  Tensor attn = from_vector<float>(b.attention_mask, {b.batch, b.seq}).to(dev);   // [2b, L]
  Tensor lmask = from_vector<float>(b.loss_mask, {b.batch, b.seq}).to(dev);       // [2b, L]
  if (lengths) *lengths = lmask.sum({1});
  return nn::sequence_logprobs(model, ids, attn, lmask);  // [2b], without the [2b, L, V] logits
}

namespace {
std::vector<PreferencePair> non_empty(std::vector<PreferencePair> pairs) {
  NR_CHECK(!pairs.empty(), "dpo: no preference pairs");
  return pairs;
}
}  // namespace

DPOTrainer::DPOTrainer(nn::GPT &policy, const nn::GPT *ref, std::vector<PreferencePair> pairs, int64_t pad_id,
                       DPOConfig opts)
    : policy_(policy),
      pairs_(non_empty(std::move(pairs))),
      pad_id_(pad_id),
      o_((dpo_options().check(opts, "dpo"), std::move(opts))),
      total_steps_(o_.loop.steps > 0 ? o_.loop.steps : o_.epochs * steps_per_epoch()),
      opt_(policy, o_.optim, total_steps_) {
  NR_CHECK(ref != nullptr || o_.loss_type == "simpo", "dpo: loss_type '{}' needs a reference model", o_.loss_type);
  check_accumulation("dpo", o_.batch_size, o_.loop.gradient_accumulation_steps, "pairs (batch_size)");
  policy_.eval();  // dropout off
  if (ref) {
    // The reference never changes: its log-probs once, in batches, without a graph; each rank
    // computes its share of the pairs and gathers the rest.
    NoGradGuard ng;
    const std::vector<size_t> mine = part_of(index_range(0, pairs_.size()), dist::world_size(), dist::rank());
    std::vector<double> chosen, rejected;
    for (size_t s = 0; s < mine.size(); s += (size_t)o_.batch_size) {
      std::vector<size_t> idx(mine.begin() + (long)s, mine.begin() + (long)std::min(mine.size(), s + o_.batch_size));
      std::vector<double> lp = pair_logprobs(*ref, pairs_, idx, pad_id_).to_vector<double>();
      chosen.insert(chosen.end(), lp.begin(), lp.begin() + (long)idx.size());
      rejected.insert(rejected.end(), lp.begin() + (long)idx.size(), lp.end());
    }
    ref_chosen_ = dist::all_gather(chosen);
    ref_rejected_ = dist::all_gather(rejected);
  }
}

int64_t DPOTrainer::steps_per_epoch() const {
  return ((int64_t)pairs_.size() + o_.batch_size - 1) / o_.batch_size;
}

void DPOTrainer::register_state(TrainState &state) {
  state.add("optimizer", opt_).add("step", step_);
}

// Every DPO-family loss is a mean over pairs: a micro-batch weighs its share of the batch's pairs.
Metrics DPOTrainer::step(const std::vector<size_t> &idx) {
  AccumulatedMetrics acc;
  for (const std::vector<size_t> &part : micro_batches(idx, o_.loop.gradient_accumulation_steps)) {
    const double w = share((double)part.size(), (double)idx.size());
    acc.add(compute(part, w), w);
  }
  optim::Optimization::Stats st = opt_.step(step_++);
  Metrics m = acc.result();
  m["lr"] = st.lr;
  m["grad_norm"] = st.grad_norm;
  return m;
}

Metrics DPOTrainer::evaluate(const std::vector<size_t> &idx) {
  NoGradGuard ng;
  return compute(idx, 0);
}

Metrics DPOTrainer::compute(const std::vector<size_t> &idx, double weight) {
  const int64_t b = (int64_t)idx.size();
  policy_.eval();
  // 1. log pi_theta of chosen and rejected completions (summed over tokens), and their lengths. [b]
  Tensor lengths;
  Tensor lp = pair_logprobs(policy_, pairs_, idx, pad_id_, &lengths);
  Tensor lc = lp.narrow(0, 0, b), lr = lp.narrow(0, b, b);
  // 2. The loss of the chosen type, on the reference's precomputed log-probs.
  PreferenceLoss pl;
  if (o_.loss_type == "simpo") {
    pl = simpo_loss(lc, lengths.narrow(0, 0, b), lr, lengths.narrow(0, b, b), o_.simpo_beta, o_.simpo_gamma);
  } else {
    std::vector<double> rc, rr;
    for (size_t i : idx) {
      rc.push_back(ref_chosen_[i]);
      rr.push_back(ref_rejected_[i]);
    }
    Tensor rlc = from_vector<double>(rc, {b}).to(lc.dtype()).to(lc.device());
    Tensor rlr = from_vector<double>(rr, {b}).to(lc.dtype()).to(lc.device());
    if (o_.loss_type == "sigmoid") pl = dpo_loss(lc, lr, rlc, rlr, o_.beta, o_.label_smoothing);
    else if (o_.loss_type == "ipo") pl = ipo_loss(lc, lr, rlc, rlr, o_.beta);
    else pl = slic_hinge_loss(lc, lr, rlc, rlr, o_.beta);
  }
  // 3. RPO: the chosen answers' NLL, so their likelihood is not traded away (any loss type).
  Tensor nll;
  if (o_.rpo_alpha > 0) {
    nll = rpo_nll(lc, lengths.narrow(0, 0, b));
    pl.loss = pl.loss + nll * o_.rpo_alpha;
  }
  // 4. This micro-batch's share of the step's gradient.
  if (weight > 0) (pl.loss * weight).backward();
  Metrics m;
  NoGradGuard ng;
  m["loss"] = pl.loss.item();
  m["rewards/chosen"] = pl.chosen_rewards.mean().item();
  m["rewards/rejected"] = pl.rejected_rewards.mean().item();
  m["rewards/accuracies"] = (pl.chosen_rewards > pl.rejected_rewards).to(kFloat32).mean().item();
  m["rewards/margins"] = (pl.chosen_rewards - pl.rejected_rewards).mean().item();
  m["logps/chosen"] = lc.detach().mean().item();
  m["logps/rejected"] = lr.detach().mean().item();
  if (o_.rpo_alpha > 0) m["nll_loss"] = nll.item();
  return m;
}

// ---- the command-line trainer ----

Metrics run_dpo(const DPOConfig &cfg, bool quiet) {
  // The policy and its frozen copy, the held-out prompts and the oracle.
  PolicyRun run("dpo", cfg.run, 0, cfg.seed, cfg.device, quiet);
  nn::GPT &policy = *run.sft.model;
  const nn::Tokenizer &tok = run.sft.tokenizer;
  if (!cfg.ref.empty()) run.use_reference(cfg.ref);  // also the evaluation's baseline
  const int64_t micro = cfg.batch_size / cfg.loop.gradient_accumulation_steps;
  nn::check_fits_in_memory(nn::training_step_bytes(policy.config, 2 * micro, policy.config.ctx),
                           fmt::format("dpo: a micro-batch of {} pairs (batch_size {} / gradient_accumulation_steps {}; 2 x {} "
                                       "sequences of up to ctx {} tokens)", micro, cfg.batch_size,
                                       cfg.loop.gradient_accumulation_steps, micro, policy.config.ctx));
  std::vector<PreferencePair> pairs = read_preference_pairs(cfg.data, tok, policy.config.ctx);
  NR_CHECK(!pairs.empty(), "{}: no preference pairs", cfg.data);
  DPOTrainer tr(policy, cfg.loss_type == "simpo" ? nullptr : run.ref.get(), std::move(pairs), tok.pad_id(), cfg);

  return train_on_dataset(run, tr, cfg, dpo_options(), "rewards/accuracies", ShortBatch::kEndsEpoch);
}

}  // namespace nanorlhf::rlhf
