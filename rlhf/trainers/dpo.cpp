// DPO and kin: tokenised pairs, summed completion log-probs, the reference's log-probs computed once,
// and one gradient step read top to bottom in DPOTrainer::compute.
#include "rlhf/trainers/dpo.h"

#include <algorithm>
#include <cmath>

#include "nn/losses.h"
#include "rlhf/objectives.h"
#include "rlhf/trainers/reward_model.h"

namespace nanorlhf::rlhf {

const std::vector<std::string> &dpo_loss_types() {
  static const std::vector<std::string> t = {"sigmoid", "ipo", "hinge", "simpo"};
  return t;
}

std::vector<TokenizedPair> tokenize_preferences(const nn::Tokenizer &tok, const std::vector<PreferenceExample> &ex,
                                                int64_t max_len) {
  std::vector<TokenizedPair> out;
  out.reserve(ex.size());
  for (const auto &e : ex) {
    TokenizedPair p;
    p.prompt = tok.encode_prompt(e.prompt);
    p.chosen = tok.encode_completion(e.chosen);
    p.rejected = tok.encode_completion(e.rejected);
    p.source = e.source;
    int64_t longest = (int64_t)(p.prompt.size() + std::max(p.chosen.size(), p.rejected.size()));
    NR_CHECK(max_len <= 0 || longest <= max_len,
             "{}: prompt + completion is {} tokens, more than the model's context ({}); shorten the record or "
             "train a model with a longer ctx",
             e.source, longest, max_len);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<TokenizedPair> read_tokenized_pairs(const std::string &path, const nn::Tokenizer &tok, int64_t ctx) {
  std::vector<TokenizedPair> out;
  for (const PreferencePair &p : read_preference_pairs(path, tok, ctx)) {
    TokenizedPair t;
    t.prompt = tok.encode_prompt(p.prompt);
    const size_t P = t.prompt.size();
    NR_CHECK(p.chosen_ids.size() > P && p.rejected_ids.size() > P &&
                 std::equal(t.prompt.begin(), t.prompt.end(), p.chosen_ids.begin()) &&
                 std::equal(t.prompt.begin(), t.prompt.end(), p.rejected_ids.begin()),
             "{}: the tokenized pair does not start with the chat-templated prompt", p.source);
    t.chosen.assign(p.chosen_ids.begin() + (long)P, p.chosen_ids.end());
    t.rejected.assign(p.rejected_ids.begin() + (long)P, p.rejected_ids.end());
    t.source = p.source;
    out.push_back(std::move(t));
  }
  return out;
}

// Rows [chosen of idx..., rejected of idx...], right-padded; loss mask 1 on completion tokens.
Tensor pair_logprobs(const nn::GPT &model, const std::vector<TokenizedPair> &pairs, const std::vector<size_t> &idx,
                     int64_t pad_id, Tensor *lengths) {
  std::vector<std::vector<int64_t>> seqs;
  std::vector<std::vector<float>> masks;
  for (int side = 0; side < 2; ++side)
    for (size_t i : idx) {
      const TokenizedPair &p = pairs.at(i);
      const std::vector<int64_t> &y = side == 0 ? p.chosen : p.rejected;
      std::vector<int64_t> s = p.prompt;
      s.insert(s.end(), y.begin(), y.end());
      std::vector<float> m(p.prompt.size(), 0.f);
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
  return nn::sequence_logprobs(model.forward(ids, attn), ids, lmask);  // [2b]
}

DPOTrainer::DPOTrainer(nn::GPT &policy, const nn::GPT *ref, std::vector<TokenizedPair> pairs, int64_t pad_id,
                       DPOOptions opts)
    : policy_(policy), pairs_(std::move(pairs)), pad_id_(pad_id), o_(std::move(opts)), opt_(policy, o_.optim) {
  const auto &types = dpo_loss_types();
  NR_CHECK(std::find(types.begin(), types.end(), o_.loss_type) != types.end(),
           "dpo: unknown loss_type '{}'; valid: {}", o_.loss_type, fmt::join(types, ", "));
  NR_CHECK(o_.beta > 0, "dpo: beta must be > 0, got {}", o_.beta);
  NR_CHECK(o_.label_smoothing >= 0 && o_.label_smoothing < 0.5, "dpo: label_smoothing must be in [0, 0.5), got {}",
           o_.label_smoothing);
  NR_CHECK(o_.label_smoothing == 0 || o_.loss_type == "sigmoid",
           "dpo: label_smoothing (cDPO) applies to loss_type sigmoid only, got loss_type '{}'", o_.loss_type);
  NR_CHECK(o_.batch_size >= 1, "dpo: batch_size must be >= 1, got {}", o_.batch_size);
  NR_CHECK(o_.rpo_alpha >= 0, "dpo: rpo_alpha must be >= 0, got {}", o_.rpo_alpha);
  NR_CHECK(!pairs_.empty(), "dpo: no preference pairs");
  NR_CHECK(ref != nullptr || o_.loss_type == "simpo", "dpo: loss_type '{}' needs a reference model", o_.loss_type);
  policy_.eval();  // dropout off
  if (ref) {
    // The reference never changes: its log-probs once, in batches, without a graph.
    NoGradGuard ng;
    ref_chosen_.resize(pairs_.size());
    ref_rejected_.resize(pairs_.size());
    for (size_t s = 0; s < pairs_.size(); s += (size_t)o_.batch_size) {
      std::vector<size_t> idx;
      for (size_t i = s; i < std::min(pairs_.size(), s + (size_t)o_.batch_size); ++i) idx.push_back(i);
      std::vector<double> lp = pair_logprobs(*ref, pairs_, idx, pad_id_).to_vector<double>();
      for (size_t j = 0; j < idx.size(); ++j) {
        ref_chosen_[idx[j]] = lp[j];
        ref_rejected_[idx[j]] = lp[idx.size() + j];
      }
    }
  }
}

Metrics DPOTrainer::step(const std::vector<size_t> &idx) { return compute(idx, true); }

Metrics DPOTrainer::evaluate(const std::vector<size_t> &idx) {
  NoGradGuard ng;
  return compute(idx, false);
}

Metrics DPOTrainer::compute(const std::vector<size_t> &idx, bool train) {
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
  // 4. One step.
  Metrics m;
  if (train) {
    pl.loss.backward();
    Optimization::Stats st = opt_.step(step_++);
    m["lr"] = st.lr;
    m["grad_norm"] = st.grad_norm;
  }
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

std::vector<ConfigKey> dpo_schema() {
  std::vector<ConfigKey> s;
  for (auto &k : sampling_trainer_keys("dpo")) {
    if (k.name == "prompts" || k.name == "reward_model" || k.name == "missing_eos_penalty") continue;  // no sampling
    if (k.name == "max_new_tokens" || k.name == "temperature") k.help += " (oracle evaluation)";
    if (k.name == "beta") k.help = "DPO beta (IPO tau, hinge beta): strength of the pull towards the reference";
    if (k.name == "steps") {
      k.help = "optimizer steps; 0 = epochs over the pairs";
      k.min = 0.0;
    }
    if (k.name == "batch_size") k.help = "preference pairs per step";
    if (k.name == "log_every") k.help = "steps between metrics.jsonl records";
    if (k.name == "eval_every") k.help = "steps between oracle evaluations; 0 = at the end only";
    s.push_back(k);
  }
  s.insert(s.begin() + 1, ConfigKey{"data", "runs/preferences/train.jsonl",
                                    "preference pairs: JSONL of {\"prompt\", \"chosen\", \"rejected\"}"});
  s.insert(s.begin() + 2, ConfigKey{"ref", "", "run directory of the frozen reference; empty = the initial policy"});
  s.push_back({"loss_type", "sigmoid",
               "sigmoid (DPO), ipo, hinge (SLiC-HF) or simpo (reference-free; drifts faster: use lr ~1e-5)"});
  s.push_back({"label_smoothing", 0.0, "cDPO: the assumed share of flipped labels (sigmoid only)", 0.0, 0.49});
  s.push_back({"simpo_beta", 2.0, "SimPO beta (reward = beta * mean token log-prob)", 0.0, std::nullopt, true});
  s.push_back({"simpo_gamma", 0.5, "SimPO target margin gamma", 0.0});
  s.push_back({"rpo_alpha", 0.0, "RPO: weight of the chosen answers' per-token NLL added to the loss; 0 = off", 0.0});
  s.push_back({"epochs", 2, "passes over the pairs when steps = 0", 1.0});
  set_default(s, "beta", 0.1);
  set_default(s, "steps", 0);
  set_default(s, "batch_size", 16);
  set_default(s, "lr", 3e-5);
  set_default(s, "log_every", 5);
  return s;
}

Metrics run_dpo(const Config &c, bool quiet) {
  SamplingRun run(c, "dpo", quiet);  // policy + frozen reference, oracle evaluation, run directory
  nn::GPT &policy = *run.sft.model;
  const nn::Tokenizer &tok = run.sft.tokenizer;
  if (!c.str("ref").empty()) {  // a reference other than the initial policy (also the evaluation's baseline)
    LoadedModel r = load_gpt_run(c.str("ref"), run.device);
    NR_CHECK(r.model->config.vocab == policy.config.vocab && r.tokenizer.vocab_size() == tok.vocab_size(),
             "dpo: reference {} (model {}, {} tokenizer tokens) does not read the policy's tokens (model {}, {})",
             c.str("ref"), r.model->config.to_json().dump(), r.tokenizer.vocab_size(), policy.config.to_json().dump(),
             tok.vocab_size());
    run.ref = frozen_copy(*r.model);
  }
  std::vector<TokenizedPair> pairs = read_tokenized_pairs(c.str("data"), tok, policy.config.ctx);
  NR_CHECK(!pairs.empty(), "{}: no preference pairs", c.str("data"));

  DPOOptions o;
  o.loss_type = c.str("loss_type");
  o.beta = c.num("beta");
  o.label_smoothing = c.num("label_smoothing");
  o.simpo_beta = c.num("simpo_beta");
  o.simpo_gamma = c.num("simpo_gamma");
  o.rpo_alpha = c.num("rpo_alpha");
  o.batch_size = c.integer("batch_size");
  const int64_t per_epoch = ((int64_t)pairs.size() + o.batch_size - 1) / o.batch_size;
  const int64_t steps = c.integer("steps") > 0 ? c.integer("steps") : c.integer("epochs") * per_epoch;
  run.set_iterations(steps);
  o.optim = run.optim;
  o.optim.steps = steps;
  DPOTrainer tr(policy, o.loss_type == "simpo" ? nullptr : run.ref.get(), std::move(pairs), tok.pad_id(), o);

  // Seeded epochs of shuffled pairs; the last batch of an epoch may be short.
  std::vector<size_t> order;
  size_t cursor = 0;
  int64_t epoch = 0;
  Metrics window;
  int64_t window_n = 0;
  for (int64_t step = 0; step < steps; ++step) {
    if (cursor >= order.size()) {
      order = shuffled_indices(tr.size(), run.seed * 1000003ULL + (uint64_t)epoch++);
      cursor = 0;
    }
    std::vector<size_t> idx(order.begin() + (long)cursor,
                            order.begin() + (long)std::min(order.size(), cursor + (size_t)o.batch_size));
    cursor += idx.size();
    Metrics m = tr.step(idx);
    for (auto &[k, v] : m) window[k] += v;
    ++window_n;
    if ((step + 1) % std::max<int64_t>(1, c.integer("log_every")) == 0 || step + 1 == steps) {
      for (auto &[k, v] : window) v /= (double)window_n;  // the mean over the logging window
      window["epoch"] = (double)(step + 1) / (double)per_epoch;
      run.log(step, window, "rewards/accuracies");
      window.clear();
      window_n = 0;
    }
    if (run.should_evaluate(step)) run.evaluate(step + 1);
  }
  return run.finish();
}

}  // namespace nanorlhf::rlhf
