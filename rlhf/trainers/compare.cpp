// Every method from one SFT model and one reward model, over seeds: each method is a stage of the
// registry with its settings, wired to the shared inputs; every trained policy is evaluated against
// SFT with the oracle on the same held-out prompts; best-of-n is the baseline that trains nothing.
#include "rlhf/trainers/compare.h"

#include <chrono>
#include <cmath>
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"
#include "rlhf/evaluation.h"
#include "rlhf/objectives.h"
#include "rlhf/report.h"
#include "rlhf/stages.h"
#include "rlhf/trainers/pipeline.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<CompareMethod> &compare_methods() {
  // Each online method samples 32 responses per iteration, as REINFORCE and PPO do in the demo;
  // GRPO and RLOO as 8 prompts x 4 samples. Against a learned reward model GRPO keeps a KL term
  // (DeepSeekMath's beta 0.04; TRL's default 0 assumes a reward that cannot be gamed).
  static const std::vector<CompareMethod> m = {
      {"reinforce", "reinforce", "REINFORCE, moving-average baseline", json::object()},
      {"rloo", "reinforce", "REINFORCE with the RLOO baseline, 4 samples per prompt", {{"rloo_k", 4}, {"batch_size", 8}}},
      {"ppo", "ppo", "PPO: per-token KL, GAE, clipped losses", json::object()},
      {"grpo", "grpo", "GRPO on the reward model, 4 samples per prompt, beta 0.04",
       {{"num_generations", 4}, {"batch_size", 8}, {"beta", 0.04}, {"steps", 80}, {"lr", 5e-5}}},
      {"dpo", "dpo", "DPO (sigmoid)", {{"label_smoothing", 0.0}}},
      {"cdpo", "dpo", "cDPO: DPO with label smoothing 0.2", {{"label_smoothing", 0.2}}},
      {"ipo", "dpo", "IPO", {{"loss_type", "ipo"}, {"label_smoothing", 0.0}}},
      {"slic", "dpo", "SLiC-HF hinge", {{"loss_type", "hinge"}, {"label_smoothing", 0.0}}},
      {"simpo", "dpo", "SimPO (no reference)", {{"loss_type", "simpo"}, {"label_smoothing", 0.0}}},
      {"kto", "kto", "KTO on the same pairs, unpaired (chosen desirable, rejected not), one epoch", {{"epochs", 1}}},
      {"raft", "raft", "RAFT: fine-tune on the reward model's best of K", json::object()},
      {"online_dpo", "online_dpo", "iterative DPO on the reward model's best vs worst of K", json::object()},
      {"best_of_n", "", "best-of-n sampling from SFT by the reward model (no training)", json::object()},
  };
  return m;
}

namespace {

// The keys compare sets for every stage (the user cannot): the shared inputs, the run folder, the
// seed, and no evaluation inside the trainer (compare evaluates every run itself, alike).
json wiring(const std::string &from, const std::string &out, uint64_t seed, bool overwrite) {
  const std::string w = from + "/world";
  return {{"policy", from + "/sft"},  {"reward_model", from + "/rm"}, {"prompts", w + "/prompts.jsonl"},
          {"eval_prompts", w + "/eval_prompts.jsonl"}, {"world", ""}, {"out", out},
          {"data", from + "/preferences/train.jsonl"}, {"ref", from + "/sft"}, {"seed", seed},
          {"eval_every", 0}, {"eval_size", 0}, {"eval_max_new_tokens", 48}, {"eval_temperature", 1.0}, {"eval_seed", 1},
          {"overwrite", overwrite}};
}

std::vector<uint64_t> parse_seeds(const std::string &s) {
  std::vector<uint64_t> out;
  for (const auto &x : split_comma_list(s)) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(x, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    NR_CHECK(used == x.size() && v >= 0, "compare: seeds must be non-negative integers, comma-separated; got '{}'", x);
    out.push_back((uint64_t)v);
  }
  NR_CHECK(!out.empty(), "compare: seeds is empty");
  return out;
}

// r(x, y) of text responses: re-encoded with the chat template and scored where the response ends.
std::vector<double> rm_scores(const nn::ScalarModel &rm, const nn::Tokenizer &tok, const std::vector<EvalRow> &rows) {
  NoGradGuard ng;
  std::vector<double> out;
  const int64_t ctx = rm.backbone->config.ctx, batch = 64;
  for (size_t i = 0; i < rows.size(); i += batch) {
    std::vector<std::vector<int64_t>> seqs;
    int64_t T = 1;
    for (size_t j = i; j < std::min(rows.size(), i + batch); ++j) {
      std::vector<int64_t> ids = tok.encode_prompt(rows[j].prompt), resp = tok.encode(rows[j].response, false);
      ids.insert(ids.end(), resp.begin(), resp.end());
      if (rows[j].finished) ids.push_back(tok.eos_id());
      if ((int64_t)ids.size() > ctx) ids.resize(ctx);  // a re-encoding can run a token or two longer
      T = std::max<int64_t>(T, (int64_t)ids.size());
      seqs.push_back(std::move(ids));
    }
    std::vector<int64_t> flat;
    std::vector<double> mask;
    for (const auto &s : seqs)
      for (int64_t t = 0; t < T; ++t) flat.push_back(t < (int64_t)s.size() ? s[t] : tok.pad_id()),
                                        mask.push_back(t < (int64_t)s.size() ? 1.0 : 0.0);
    const int64_t B = (int64_t)seqs.size();
    Tensor sc = rm.score(from_vector<int64_t>(flat, {B, T}), from_vector<double>(mask, {B, T}).to(kFloat32));
    for (double v : sc.to_vector<double>()) out.push_back(v);
  }
  return out;
}

// "mean +- se", each in its format; "mean +- n/a" when the s.e. is undefined (one seed).
std::string mean_se_text(const json &x, const char *mean_fmt, const char *se_fmt) {
  std::string m = fmt::format(fmt::runtime(mean_fmt), x["mean"].get<double>());
  return m + " +- " + (x["se"].is_null() ? std::string("n/a") : fmt::format(fmt::runtime(se_fmt), x["se"].get<double>()));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<ConfigKey> compare_schema() {
  std::vector<ConfigKey> s = {
      {"out", "runs/compare", "folder for every method's runs, compare.json and report.html"},
      {"overwrite", false, "replace the comparison (and its runs) already in `out`"},
      {"from", "runs/demo",
       "a pipeline folder holding world/, sft/, rm/ and preferences/ (built there first if missing)"},
      {"seeds", "1,2,3", "seeds of every method, comma-separated (each seeds training and evaluation)"},
      {"methods", "", "methods to run, comma-separated; empty = all"},
      {"eval_size", 500, "held-out prompts each run is evaluated on (draws of world/eval_prompts.jsonl)", 1.0},
      {"best_of_n", 8, "n of the best-of-n baseline", 1.0},
  };
  const json demo = demo_defaults();
  for (const auto &m : compare_methods()) {
    if (m.stage.empty()) continue;
    for (auto k : prefixed_stage_keys(m.stage, m.name, wiring("", "", 0, false))) {
      const std::string key = k.name.substr(m.name.size() + 1);
      if (demo.contains(m.stage + "." + key)) k.default_value = demo[m.stage + "." + key];
      if (m.settings.contains(key)) k.default_value = m.settings[key];
      s.push_back(std::move(k));
    }
  }
  return s;
}

CompareResult run_compare(const Config &c, bool quiet) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::string out = c.str("out"), from = c.str("from");
  const std::vector<uint64_t> seeds = parse_seeds(c.str("seeds"));
  std::vector<const CompareMethod *> todo;
  {
    std::string valid;
    for (const auto &m : compare_methods()) valid += (valid.empty() ? "" : ", ") + m.name;
    std::vector<std::string> names = split_comma_list(c.str("methods"));
    for (const auto &m : compare_methods())
      if (names.empty() || std::find(names.begin(), names.end(), m.name) != names.end()) todo.push_back(&m);
    for (const auto &n : names) {
      bool ok = false;
      for (const auto &m : compare_methods()) ok = ok || m.name == n;
      NR_CHECK(ok, "compare: unknown method '{}' in methods; valid: {}", n, valid);
    }
  }
  auto log = [&](const std::string &msg) {
    if (!quiet) std::fprintf(stderr, "== %s\n", msg.c_str());
  };

  NR_CHECK(c.flag("overwrite") || !fs::exists(out + "/compare.json"),
           "compare: {} holds a comparison already (compare.json); give --overwrite to replace it, or another out", out);

  // 1. The shared inputs: the pipeline's prefix, built in `from` if it is not there.
  if (!fs::exists(from + "/rm/model.safetensors") || !fs::exists(from + "/sft/model.safetensors") ||
      !fs::exists(from + "/preferences/train.jsonl")) {
    log("building the SFT model and the reward model in " + from);
    Config pc(find_stage("pipeline").schema());
    pc.merge(json{{"out", from}, {"stages", "pretrain,sft,preferences,rm"}});
    find_stage("pipeline").run(pc, quiet);
  }
  const std::string world = from + "/world";
  const Oracle oracle = Oracle::from_world_dir(world);
  std::vector<std::string> prompts;
  for (auto &p : read_prompts_jsonl(world + "/eval_prompts.jsonl")) prompts.push_back(p.prompt);
  if ((int64_t)prompts.size() > c.integer("eval_size")) prompts.resize((size_t)c.integer("eval_size"));
  LoadedRun<nn::GPT> sft = load_run<nn::GPT>(from + "/sft", Device::cpu());
  LoadedRun<nn::ScalarModel> rm = load_run<nn::ScalarModel>(from + "/rm", Device::cpu());
  fs::create_directories(out);
  nn::write_file_atomic(out + "/config.json", c.resolved().dump(2) + "\n");

  // 2. Every method and seed: train (through the registry), then evaluate against SFT.
  CompareResult res{json::array(), json::array(), out, 0};
  for (const CompareMethod *m : todo) {
    for (uint64_t seed : seeds) {
      const std::string dir = fmt::format("{}/{}/seed{}", out, m->name, seed);
      log(fmt::format("{} seed {}", m->name, seed));
      EvalOptions eo;
      eo.seed = seed;
      json row = {{"method", m->name}, {"seed", seed}};
      EvalResult r;
      if (m->stage.empty()) {
        // best-of-n: SFT's own evaluation gives the reference samples; n more per prompt compete.
        const int64_t n = c.integer("best_of_n");
        r = evaluate(*sft.model, *sft.model, sft.tokenizer, oracle, prompts, eo);
        const int64_t tokens0 = sampled_tokens();
        const auto t0 = std::chrono::steady_clock::now();
        std::vector<std::string> repeated;
        for (const auto &p : prompts)
          for (int64_t j = 0; j < n; ++j) repeated.push_back(p);
        nn::GenerationConfig g{.max_new_tokens = eo.max_new_tokens, .temperature = eo.temperature,
                               .seed = seed * 7919 + 17};
        SampledResponses cand = sample_in_chunks(*sft.model, sft.tokenizer, repeated, g, eo.batch * n);
        std::vector<EvalRow> cand_rows(cand.prompts.size());
        for (size_t i = 0; i < cand_rows.size(); ++i)
          cand_rows[i].prompt = cand.prompts[i], cand_rows[i].response = cand.responses[i],
          cand_rows[i].finished = cand.finished[i];
        std::vector<double> score = rm_scores(*rm.model, sft.tokenizer, cand_rows);
        for (size_t i = 0; i < prompts.size(); ++i) {
          size_t best = i * n;
          for (size_t j = i * n; j < (i + 1) * n; ++j)
            if (score[j] - (cand.finished[j] ? 0.0 : 1.0) > score[best] - (cand.finished[best] ? 0.0 : 1.0)) best = j;
          EvalRow &e = r.rows[i];
          e.response = cand.responses[best], e.finished = cand.finished[best], e.length = cand.lengths[best];
          e.score = oracle.score(e.prompt, e.response, e.finished);
          e.kl = best_of_n_kl(n);
        }
        r = summarize_rows(std::move(r.rows));
        row["seconds"] = seconds_since(t0);
        row["tokens"] = sampled_tokens() - tokens0;
      } else {
        Config sc = prefixed_stage_config(m->stage, m->name, c, wiring(from, dir, seed, c.flag("overwrite")));
        const int64_t tokens0 = sampled_tokens();
        const auto t0 = std::chrono::steady_clock::now();
        find_stage(m->stage).run(sc, true);
        row["seconds"] = seconds_since(t0);
        row["tokens"] = sampled_tokens() - tokens0;
        LoadedRun<nn::GPT> policy = load_run<nn::GPT>(dir, Device::cpu());
        r = evaluate(*policy.model, *sft.model, sft.tokenizer, oracle, prompts, eo);
      }
      std::vector<double> rms = rm_scores(*rm.model, sft.tokenizer, r.rows);
      double rm_mean = 0;
      for (double v : rms) rm_mean += v / double(rms.size());
      row.update(json{{"oracle_score", r.oracle_reward}, {"win_rate_vs_sft", r.win_rate}, {"win_rate_se", r.win_rate_se},
                      {"kl_to_sft", r.kl_to_ref}, {"rm_score", rm_mean}, {"response_length", r.response_length}});
      res.runs.push_back(row);
      nn::write_file_atomic(out + "/compare.json", json{{"runs", res.runs}}.dump(2) + "\n");  // progress survives a kill
    }
  }

  // 3. Mean and standard error over seeds, per method.
  const std::vector<std::string> measures = {"oracle_score", "win_rate_vs_sft", "kl_to_sft", "rm_score", "seconds",
                                             "tokens"};
  for (const CompareMethod *m : todo) {
    json t = {{"method", m->name}, {"help", m->help}, {"seeds", (int64_t)seeds.size()}};
    for (const auto &k : measures) {
      std::vector<double> v;
      for (const auto &r : res.runs)
        if (r["method"] == m->name) v.push_back(r[k].get<double>());
      const double se = standard_error_of(v);  // NaN with one seed: no spread to measure
      t[k] = {{"mean", mean_of(v)}, {"se", std::isnan(se) ? json(nullptr) : json(se)}};
    }
    res.table.push_back(t);
  }
  res.seconds = seconds_since(t_start);
  nn::write_file_atomic(out + "/compare.json",
                        json{{"table", res.table}, {"runs", res.runs}, {"seeds", seeds}, {"seconds", res.seconds}}.dump(2) +
                            "\n");

  // 4. The report: the table, and win rate against KL for every run.
  json rows = json::array();
  for (const auto &t : res.table) {
    auto pm = [&](const char *k, const char *m, const char *e) { return mean_se_text(t[k], m, e); };
    rows.push_back({{"stage", t["method"]}, {"oracle_score", pm("oracle_score", "{:+.3f}", "{:.3f}")},
                    {"win_rate_vs_sft", pm("win_rate_vs_sft", "{:.3f}", "{:.3f}")},
                    {"kl_to_sft", pm("kl_to_sft", "{:.2f}", "{:.2f}")}, {"seconds", pm("seconds", "{:.1f}", "{:.1f}")}});
  }
  Chart chart{"win rate vs SFT (y) against KL to SFT (x), one point per seed", {}};
  for (const CompareMethod *m : todo) {
    Curve cv{m->name, {}};
    for (const auto &r : res.runs)
      if (r["method"] == m->name) cv.points.push_back({r["kl_to_sft"].get<double>(), r["win_rate_vs_sft"].get<double>()});
    std::sort(cv.points.begin(), cv.points.end());
    chart.curves.push_back(std::move(cv));
  }
  write_report_html(out + "/report.html", rows, {chart}, {}, "nanorlhf compare: every method over seeds");
  return res;
}

std::string compare_table(const json &table) {
  std::string t = fmt::format("{:<11} {:>5} {:>17} {:>17} {:>13} {:>15} {:>12} {:>11}\n", "method", "seeds",
                              "oracle score", "win rate vs SFT", "KL to SFT", "RM score", "seconds", "tokens");
  for (const auto &r : table) {
    auto pm = [&](const char *k, const char *m, const char *e) { return mean_se_text(r[k], m, e); };
    t += fmt::format("{:<11} {:>5} {:>17} {:>17} {:>13} {:>15} {:>12} {:>11}\n", r["method"].get<std::string>(),
                     r["seeds"].get<int64_t>(), pm("oracle_score", "{:+.3f}", "{:.3f}"),
                     pm("win_rate_vs_sft", "{:.3f}", "{:.3f}"), pm("kl_to_sft", "{:.2f}", "{:.2f}"),
                     pm("rm_score", "{:+.2f}", "{:.2f}"), pm("seconds", "{:.1f}", "{:.1f}"),
                     fmt::format("{:.0f}", r["tokens"]["mean"].get<double>()));
  }
  return t + "mean +- standard error over seeds (sd / sqrt(n))\n";
}

}  // namespace nanorlhf::rlhf
