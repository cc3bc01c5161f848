// Reward-model training: (x, y_w) and (x, y_l) scored in one right-padded batch by a ScalarModel
// initialised from the SFT backbone, Bradley-Terry loss, held-out and oracle agreement, normalisation.
#include "rlhf/trainers/reward_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "nn/checkpoint.h"
#include "rlhf/objectives.h"
#include "rlhf/run_dir.h"
#include "rlhf/trainers/pretrain.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<int64_t> encode_pair_side(const nn::Tokenizer &tok, const std::string &prompt, const std::string &response,
                                      bool finished) {
  std::vector<int64_t> ids = tok.encode_prompt(prompt);
  std::vector<int64_t> r = finished ? tok.encode_completion(response) : tok.encode(response, /*allow_special=*/false);
  ids.insert(ids.end(), r.begin(), r.end());
  return ids;
}

std::vector<PreferencePair> read_preference_pairs(const std::string &path, const nn::Tokenizer &tok, int64_t ctx) {
  std::vector<PreferenceExample> ex = read_preference_jsonl(path);  // checks fields, names path:line
  std::vector<std::pair<int64_t, json>> raw = read_jsonl(path);     // the optional finished flags
  NR_CHECK(raw.size() == ex.size(), "{}: {} records but {} preference examples", path, raw.size(), ex.size());
  std::vector<PreferencePair> out;
  out.reserve(ex.size());
  for (size_t i = 0; i < ex.size(); ++i) {
    PreferencePair p;
    p.prompt = std::move(ex[i].prompt);
    p.chosen = std::move(ex[i].chosen);
    p.rejected = std::move(ex[i].rejected);
    p.source = ex[i].source;
    for (auto [key, flag] : {std::pair{"chosen_finished", &p.chosen_finished}, {"rejected_finished", &p.rejected_finished}}) {
      if (!raw[i].second.contains(key)) continue;
      const json &v = raw[i].second[key];
      NR_CHECK(v.is_boolean(), "{}: field \"{}\" must be true or false, got {}", p.source, key, v.dump());
      *flag = v.get<bool>();
    }
    const int64_t prompt_len = (int64_t)tok.encode_prompt(p.prompt).size();
    NR_CHECK(prompt_len < ctx, "{}: the prompt is {} tokens with the chat template, longer than the context ctx = {} "
             "leaves room for (the reward model reads prompt + response)", p.source, prompt_len, ctx);
    p.chosen_ids = encode_pair_side(tok, p.prompt, p.chosen, p.chosen_finished);
    p.rejected_ids = encode_pair_side(tok, p.prompt, p.rejected, p.rejected_finished);
    for (auto [what, ids] : {std::pair{"chosen", &p.chosen_ids}, {"rejected", &p.rejected_ids}})
      NR_CHECK((int64_t)ids->size() <= ctx, "{}: prompt + {} response is {} tokens, longer than the context ctx = {}",
               p.source, what, ids->size(), ctx);
    out.push_back(std::move(p));
  }
  return out;
}

PairScores score_pairs(const nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs,
                       const std::vector<size_t> &rows, int64_t pad_id) {
  const int64_t B = (int64_t)rows.size();
  std::vector<std::vector<int64_t>> seqs;
  seqs.reserve(2 * rows.size());
  for (size_t r : rows) seqs.push_back(pairs[r].chosen_ids);
  for (size_t r : rows) seqs.push_back(pairs[r].rejected_ids);
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
  for (size_t i = 0; i < pairs.size(); i += (size_t)batch) {
    std::vector<size_t> rows;
    for (size_t j = i; j < std::min(pairs.size(), i + (size_t)batch); ++j) rows.push_back(j);
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
  e.pairs = (int64_t)pairs.size();
  e.loss /= double(e.pairs);
  e.accuracy /= double(e.pairs);
  e.margin /= double(e.pairs);
  e.rm_accuracy = e.oracle_pairs ? double(agree) / double(e.oracle_pairs) : 0.0;
  return e;
}

LoadedRewardModel load_reward_model(const std::string &run_dir, Device device) {
  NR_CHECK(fs::is_directory(run_dir), "reward model '{}' is not a folder (expected a run directory of `nanorlhf rm`)",
           run_dir);
  LoadedRewardModel out;
  out.config = nn::load_checkpoint_config(run_dir);
  NR_CHECK(out.config.is_object() && out.config.contains("model"), "{}/config.json has no \"model\" section", run_dir);
  nn::GPTConfig g;
  try {
    g = nn::GPTConfig::from_json(out.config["model"]);
  } catch (const std::exception &e) {
    throw Error(fmt::format("{}/config.json: {}", run_dir, e.what()));
  }
  out.tokenizer = nn::Tokenizer::load((fs::path(run_dir) / "tokenizer.json").string());
  out.model = std::make_shared<nn::ScalarModel>(g);
  nn::load_checkpoint(run_dir, *out.model);
  out.model->to(device);
  out.model->eval();
  return out;
}

std::vector<ConfigKey> reward_model_schema() {
  std::vector<ConfigKey> s = {
      {"sft", "runs/sft", "SFT run directory: the backbone and the tokenizer"},
      {"data", "runs/preferences/train.jsonl", "training pairs: JSONL of {\"prompt\",\"chosen\",\"rejected\"}"},
      {"eval_data", "runs/preferences/heldout.jsonl", "held-out pairs; empty = none"},
      {"world", "data", "world folder whose noiseless oracle rm_accuracy compares against; empty = skip"},
      {"out", "runs/rm", "run directory"},
      {"margin", 0.0, "Bradley-Terry margin m in -log sigmoid(r_w - r_l - m) (Llama 2)"},
      {"normalize", true, "shift and scale the head so the training responses score mean 0, std 1"},
      {"eval_every", 0, "steps between held-out evaluations; 0 = at the end only", 0.0},
  };
  for (auto &k : train_config_keys()) s.push_back(k);
  set_default(s, "steps", 300);
  set_default(s, "batch_size", 32);
  set_default(s, "lr", 3e-4);
  set_default(s, "warmup", 20);
  set_default(s, "weight_decay", 0.0);
  return s;
}

namespace {

// r <- (r - mean) / std on the training responses: the head's bias and weight absorb it (OpenAI
// lm-human-preferences normalises rewards of reference samples the same way).
std::pair<double, double> normalize_head(nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs, int64_t pad_id) {
  NoGradGuard no_grad;
  double sum = 0, sq = 0;
  int64_t n = 0;
  for (size_t i = 0; i < pairs.size(); i += 64) {
    std::vector<size_t> rows;
    for (size_t j = i; j < std::min(pairs.size(), i + 64); ++j) rows.push_back(j);
    PairScores s = score_pairs(rm, pairs, rows, pad_id);
    for (const Tensor &t : {s.chosen, s.rejected})
      for (double v : t.to_vector<double>()) sum += v, sq += v * v, ++n;
  }
  const double mean = sum / double(n), var = std::max(sq / double(n) - mean * mean, 0.0);
  const double std = std::sqrt(var + 1e-8);
  rm.head->bias.copy_((rm.head->bias - mean) * (1.0 / std));
  rm.head->weight.copy_(rm.head->weight * (1.0 / std));
  return {mean, std};
}

}  // namespace

RewardModelResult run_reward_model(const Config &c, bool quiet) {
  const Device dev = Device::parse(c.str("device"));
  const OptimConfig ocfg = OptimConfig::from(c);
  const uint64_t seed = uint64_t(c.integer("seed"));
  const int64_t B = c.integer("batch_size"), log_every = c.integer("log_every"), eval_every = c.integer("eval_every");
  const double margin = c.num("margin");

  LoadedModel sft = load_gpt_run(c.str("sft"), dev);
  const nn::Tokenizer &tok = sft.tokenizer;
  const int64_t ctx = sft.model->config.ctx;
  std::vector<PreferencePair> train = read_preference_pairs(c.str("data"), tok, ctx);
  NR_CHECK(!train.empty(), "{}: no preference pairs", c.str("data"));
  std::vector<PreferencePair> heldout;
  if (!c.str("eval_data").empty()) heldout = read_preference_pairs(c.str("eval_data"), tok, ctx);
  std::unique_ptr<Oracle> oracle;
  if (!c.str("world").empty()) oracle = std::make_unique<Oracle>(Oracle::from_world_dir(c.str("world")));

  json resolved = c.resolved();
  resolved["model"] = sft.model->config.to_json();
  RunDir run(c.str("out"));
  run.write_config(resolved);

  manual_seed(seed);  // the head's initialisation
  nn::ScalarModel rm(sft.model->config);
  rm.init_backbone_from(*sft.model);
  rm.to(dev);
  sft.model.reset();  // the SFT weights now live in the reward model
  rm.train();
  Optimization opt(rm, ocfg);

  RewardModelResult res;
  res.run_dir = c.str("out");
  auto eval = [&](int64_t step) {
    rm.eval();
    PairEval e = evaluate_pairs(rm, heldout, tok.pad_id(), oracle.get());
    rm.train();
    json rec = {{"step", step}, {"eval/loss", e.loss}, {"eval/accuracy", e.accuracy}, {"eval/margin", e.margin}};
    if (oracle) rec["rm_accuracy"] = e.rm_accuracy, rec["rm_accuracy_pairs"] = e.oracle_pairs;
    run.log_metrics(rec);
    return e;
  };

  std::vector<size_t> order;
  size_t cursor = 0;
  int64_t epoch = 0;
  Progress progress("rm", ocfg.steps, quiet ? nullptr : stderr);
  double win_loss = 0, win_acc = 0, win_margin = 0, win_norm = 0;
  int64_t win_n = 0;
  for (int64_t step = 0; step < ocfg.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<size_t> rows;
    while ((int64_t)rows.size() < std::min<int64_t>(B, (int64_t)train.size())) {
      if (cursor == order.size()) {
        order = shuffled_indices(train.size(), seed * 1000003ull + uint64_t(epoch++));
        cursor = 0;
        if (!rows.empty()) break;  // a short batch ends the epoch
      }
      rows.push_back(order[cursor++]);
    }
    PairScores s = score_pairs(rm, train, rows, tok.pad_id());
    Tensor loss = bradley_terry_loss(s.chosen, s.rejected, margin);
    loss.backward();
    const double l = loss.item();
    NR_CHECK(std::isfinite(l), "rm step {}: the loss is {} (training diverged); try a smaller lr", step + 1, l);
    Optimization::Stats st = opt.step(step);
    std::vector<double> rc = s.chosen.to_vector<double>(), rr = s.rejected.to_vector<double>();
    double acc = 0, mg = 0;
    for (size_t k = 0; k < rc.size(); ++k) acc += rc[k] > rr[k], mg += rc[k] - rr[k];
    acc /= double(rc.size());
    mg /= double(rc.size());
    res.losses.push_back(l);
    res.accuracies.push_back(acc);
    win_loss += l, win_acc += acc, win_margin += mg, win_norm += st.grad_norm, ++win_n;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.update(step + 1, {{"loss", l}, {"accuracy", acc}}, double(2 * rows.size()) / std::max(dt, 1e-9));
    if ((step + 1) % log_every == 0 || step + 1 == ocfg.steps) {
      run.log_metrics({{"step", step + 1},
                       {"loss", win_loss / double(win_n)},
                       {"accuracy", win_acc / double(win_n)},
                       {"margin", win_margin / double(win_n)},
                       {"lr", st.lr},
                       {"grad_norm", win_norm / double(win_n)},
                       {"epoch", double((step + 1) * B) / double(train.size())}});
      win_loss = win_acc = win_margin = win_norm = 0;
      win_n = 0;
    }
    if (eval_every > 0 && (step + 1) % eval_every == 0 && step + 1 < ocfg.steps && !heldout.empty()) eval(step + 1);
  }
  progress.done();
  rm.eval();
  if (!heldout.empty()) res.eval = eval(ocfg.steps);
  if (c.flag("normalize")) {
    std::tie(res.reward_mean, res.reward_std) = normalize_head(rm, train, tok.pad_id());
    run.log_metrics({{"step", ocfg.steps}, {"reward/mean_before_norm", res.reward_mean},
                     {"reward/std_before_norm", res.reward_std}});
  }
  nn::save_checkpoint(res.run_dir, rm, resolved, {{"step", ocfg.steps}, {"stage", "reward_model"}});
  tok.save(run.path("tokenizer.json"));
  if (!quiet && !heldout.empty())
    std::fprintf(stderr, "rm: held-out loss %.4f, accuracy %.3f (noisy labels), rm_accuracy %.3f on %lld oracle-decided pairs\n",
                 res.eval.loss, res.eval.accuracy, res.eval.rm_accuracy, (long long)res.eval.oracle_pairs);
  return res;
}

}  // namespace nanorlhf::rlhf
