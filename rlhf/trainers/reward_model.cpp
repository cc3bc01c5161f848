// Reward-model training: (x, y_w) and (x, y_l) scored in one right-padded batch by a ScalarModel
// initialised from the SFT backbone, Bradley-Terry loss, held-out and oracle agreement, normalisation.
#include "rlhf/trainers/reward_model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "rlhf/batching.h"
#include "nn/distributed.h"
#include "rlhf/checkpoints.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"
#include "rlhf/run_dir.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

const OptionTable<RewardConfig> &reward_options() {
  using O = RewardConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = training_options<O>();
    t.add("sft", &O::sft, "SFT run directory or Hugging Face GPT-2 folder: the backbone and the tokenizer")
        .add("data", &O::data, "training pairs: JSONL of {\"prompt\",\"chosen\",\"rejected\"}")
        .add("eval_data", &O::eval_data, "held-out pairs; empty = none")
        .add("world", &O::world, "world folder whose noiseless oracle rm_accuracy compares against; empty = skip")
        .add("out", &O::out, "run directory")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("resume", &O::resume, kResumeHelp)
        .add("margin", &O::margin, "Bradley-Terry margin m in -log sigmoid(r_w - r_l - m) (Llama 2)")
        .add("normalize", &O::normalize, "shift and scale the head so the training responses score mean 0, std 1")
        .add("eval_every", [](O &o) -> auto & { return o.loop.eval_every; },
             "steps between held-out evaluations; 0 = at the end only", Range::at_least(0));
    return t;
  }();
  return t;
}

PairScores score_pairs(const nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs,
                       const std::vector<size_t> &rows, int64_t pad_id) {
  const int64_t B = (int64_t)rows.size();
  std::vector<std::vector<int64_t>> seqs;
  seqs.reserve(2 * rows.size());
  for (int side = 0; side < 2; ++side)
    for (size_t r : rows) {
      const PreferencePair &p = pairs[r];
      seqs.push_back(p.prompt_ids);
      const std::vector<int64_t> &y = side == 0 ? p.chosen_ids : p.rejected_ids;
      seqs.back().insert(seqs.back().end(), y.begin(), y.end());
    }
  TokenBatch tb = pad_batch(seqs, {}, pad_id, /*left_pad=*/false);
  const Device dev = rm.head->weight.device();
  Tensor ids = from_vector<int64_t>(tb.input_ids, {tb.batch, tb.seq}).to(dev);
  Tensor mask = from_vector<float>(tb.attention_mask, {tb.batch, tb.seq}).to(dev);
  Tensor r = rm.score(ids, mask);  // [2B], read at each row's last real token (<|eos|>)
  return {r.narrow(0, 0, B), r.narrow(0, B, B)};
}

PairEval evaluate_pairs(const nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs, int64_t pad_id,
                        const Oracle *oracle, int64_t batch) {
  PairEval e;
  if (pairs.empty()) return e;
  NoGradGuard no_grad;
  int64_t agree = 0;
  // Data parallelism: each rank its share of the pairs, then the sums over the ranks.
  const std::vector<size_t> mine = part_of(index_range(0, pairs.size()), dist::world_size(), dist::rank());
  for (size_t i = 0; i < mine.size(); i += (size_t)batch) {
    std::vector<size_t> rows(mine.begin() + (long)i, mine.begin() + (long)std::min(mine.size(), i + (size_t)batch));
    PairScores s = score_pairs(rm, pairs, rows, pad_id);
    e.loss += bradley_terry_loss(s.chosen, s.rejected).item() * double(rows.size());
    std::vector<double> rc = s.chosen.to_vector<double>(), rr = s.rejected.to_vector<double>();
    for (size_t k = 0; k < rows.size(); ++k) {
      e.accuracy += rc[k] > rr[k];
      e.margin += rc[k] - rr[k];
      if (!oracle) continue;
      const PreferencePair &p = pairs[rows[k]];
      const double oc = oracle->score(p.prompt, p.chosen, p.chosen_finished).total;
      const double orj = oracle->score(p.prompt, p.rejected, p.rejected_finished).total;
      if (oc == orj) continue;  // the oracle has no preference: nothing to agree with
      ++e.oracle_pairs;
      agree += (rc[k] > rr[k]) == (oc > orj);
    }
  }
  const Metrics sums = sum_over_ranks({{"loss", e.loss}, {"accuracy", e.accuracy}, {"margin", e.margin},
                                       {"oracle_pairs", (double)e.oracle_pairs}, {"agree", (double)agree}});
  e.loss = sums.at("loss"), e.accuracy = sums.at("accuracy"), e.margin = sums.at("margin");
  e.oracle_pairs = (int64_t)sums.at("oracle_pairs"), agree = (int64_t)sums.at("agree");
  e.pairs = (int64_t)pairs.size();
  e.loss /= double(e.pairs);
  e.accuracy /= double(e.pairs);
  e.margin /= double(e.pairs);
  e.rm_accuracy = e.oracle_pairs ? double(agree) / double(e.oracle_pairs) : 0.0;
  return e;
}

namespace {

// r <- (r - mean) / std on the training responses: the head's bias and weight absorb it (OpenAI
// lm-human-preferences normalises rewards of reference samples the same way).
std::pair<double, double> normalize_head(nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs, int64_t pad_id) {
  NoGradGuard no_grad;
  double sum = 0, sq = 0;
  const std::vector<size_t> mine = part_of(index_range(0, pairs.size()), dist::world_size(), dist::rank());
  for (size_t i = 0; i < mine.size(); i += 64) {
    std::vector<size_t> rows(mine.begin() + (long)i, mine.begin() + (long)std::min(mine.size(), i + 64));
    PairScores s = score_pairs(rm, pairs, rows, pad_id);
    for (const Tensor &t : {s.chosen, s.rejected})
      for (double v : t.to_vector<double>()) sum += v, sq += v * v;
  }
  const Metrics sums = sum_over_ranks({{"sum", sum}, {"sq", sq}});  // each rank its share of the pairs
  sum = sums.at("sum"), sq = sums.at("sq");
  const double n = 2.0 * (double)pairs.size();
  const double mean = sum / double(n), var = std::max(sq / double(n) - mean * mean, 0.0);
  const double std = std::sqrt(var + 1e-8);
  rm.head->bias.copy_((rm.head->bias - mean) * (1.0 / std));
  rm.head->weight.copy_(rm.head->weight * (1.0 / std));
  return {mean, std};
}

}  // namespace

RewardModelResult run_reward_model(const RewardConfig &cfg, bool quiet) {
  const Device dev = Device::parse(cfg.device);
  LoadedModel sft = load_run<nn::GPT>(cfg.sft, dev);
  check_accumulation("rm", cfg.batch_size, cfg.loop.gradient_accumulation_steps, "pairs (batch_size)");
  const int64_t micro = cfg.batch_size / cfg.loop.gradient_accumulation_steps;
  nn::check_fits_in_memory(nn::training_step_bytes(sft.model->config, 2 * micro, sft.model->config.ctx),
                           fmt::format("rm: a micro-batch of {} pairs (batch_size {} / gradient_accumulation_steps {}; 2 x {} "
                                       "sequences of up to ctx {} tokens)", micro, cfg.batch_size,
                                       cfg.loop.gradient_accumulation_steps, micro, sft.model->config.ctx));
  const nn::Tokenizer &tok = sft.tokenizer;
  const int64_t ctx = sft.model->config.ctx;
  std::vector<PreferencePair> train = read_preference_pairs(cfg.data, tok, ctx);
  NR_CHECK(!train.empty(), "{}: no preference pairs", cfg.data);
  std::vector<PreferencePair> heldout;
  if (!cfg.eval_data.empty()) heldout = read_preference_pairs(cfg.eval_data, tok, ctx);
  std::unique_ptr<Oracle> oracle;
  if (!cfg.world.empty()) oracle = std::make_unique<Oracle>(Oracle::from_world_dir(cfg.world));

  json resolved = reward_options().resolved(cfg);
  resolved["model"] = sft.model->config.to_json();
  RunDir run(cfg.out, cfg.overwrite, cfg.resume);
  run.write_config(resolved);

  manual_seed(cfg.seed);  // the head's initialisation
  nn::ScalarModel rm(sft.model->config);
  rm.init_backbone_from(*sft.model);
  rm.to(dev);
  sft.model.reset();  // the SFT weights now live in the reward model
  rm.train();
  optim::Optimization opt(rm, cfg.optim, cfg.loop.steps);

  RewardModelResult res;
  res.run_dir = cfg.out;
  auto eval = [&](int64_t step) {
    rm.eval();
    PairEval e = evaluate_pairs(rm, heldout, tok.pad_id(), oracle.get());
    rm.train();
    json rec = {{"step", step}, {"eval/loss", e.loss}, {"eval/accuracy", e.accuracy}, {"eval/margin", e.margin}};
    if (oracle) rec["rm_accuracy"] = e.rm_accuracy, rec["rm_accuracy_pairs"] = e.oracle_pairs;
    run.log_metrics(rec);
    return e;
  };

  EpochSampler batches(train.size(), (size_t)cfg.batch_size, cfg.seed, ShortBatch::kEndsEpoch);
  TrainState state;
  state.add("model", rm).add("optimizer", opt).add("batches", batches);
  state.add("losses", res.losses).add("accuracies", res.accuracies);
  TrainingLoop loop{.task = "rm", .options = cfg.loop, .shown = {"loss", "accuracy"}, .last_value = {"lr", "epoch"},
                    .quiet = quiet, .state = &state};
  run_training_loop(loop, run, [&](int64_t step) {
    // 1. r(x, y_w), r(x, y_l) of a batch of pairs, micro-batch by micro-batch; 2. the Bradley-Terry
    //    loss, each micro-batch's mean weighted by its share of the pairs; 3. one optimizer step.
    const std::vector<size_t> rows = batches.next();
    AccumulatedMetrics acc;
    for (const std::vector<size_t> &part : micro_batches(rows, cfg.loop.gradient_accumulation_steps)) {
      PairScores s = score_pairs(rm, train, part, tok.pad_id());
      const double w = share((double)part.size(), (double)rows.size());
      Tensor loss = bradley_terry_loss(s.chosen, s.rejected, cfg.margin);
      (loss * w).backward();
      NoGradGuard ng;
      acc.add({{"loss", loss.item()},
               {"accuracy", (s.chosen > s.rejected).to(kFloat32).mean().item()},
               {"margin", (s.chosen - s.rejected).mean().item()}}, w);
    }
    optim::Optimization::Stats st = opt.step(step);
    Metrics m = acc.result();
    res.losses.push_back(m.at("loss"));
    res.accuracies.push_back(m.at("accuracy"));
    m["lr"] = st.lr;
    m["grad_norm"] = st.grad_norm;
    m["epoch"] = double((step + 1) * cfg.batch_size) / double(train.size());
    return StepOutput{m, 0};
  }, [&](int64_t step) { if (!heldout.empty()) eval(step); });
  rm.eval();
  if (!heldout.empty()) res.eval = eval(cfg.loop.steps);
  if (cfg.normalize) {
    std::tie(res.reward_mean, res.reward_std) = normalize_head(rm, train, tok.pad_id());
    run.log_metrics({{"step", cfg.loop.steps}, {"reward/mean_before_norm", res.reward_mean},
                     {"reward/std_before_norm", res.reward_std}});
  }
  save_run(run.root(), rm, tok, resolved, {{"step", cfg.loop.steps}, {"stage", "reward_model"}});
  run.commit();
  if (!quiet && !heldout.empty())
    std::fprintf(stderr, "rm: held-out loss %.4f, accuracy %.3f (noisy labels), rm_accuracy %.3f on %lld oracle-decided pairs\n",
                 res.eval.loss, res.eval.accuracy, res.eval.rm_accuracy, (long long)res.eval.oracle_pairs);
  return res;
}

}  // namespace nanorlhf::rlhf
