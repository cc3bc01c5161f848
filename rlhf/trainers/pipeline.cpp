// The pipeline wires each stage's inputs to the previous stages' run directories, times them,
// evaluates every policy against SFT with the oracle, and writes summary.json and report.html.
#include "rlhf/trainers/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "rlhf/report.h"
#include "rlhf/trainers/dpo.h"
#include "rlhf/trainers/evaluate.h"
#include "rlhf/trainers/ppo.h"
#include "rlhf/trainers/preferences.h"
#include "rlhf/trainers/pretrain.h"
#include "rlhf/trainers/reinforce.h"
#include "rlhf/trainers/reward_model.h"
#include "rlhf/trainers/sft.h"
#include "rlhf/world.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace {

struct Stage {
  const char *name;
  std::vector<ConfigKey> (*schema)();
  std::set<std::string> wired;  // keys the pipeline sets from earlier stages
};

const std::vector<Stage> &stages() {
  static const std::vector<Stage> s = {
      {"pretrain", pretrain_schema, {"data", "out", "tokenizer"}},
      {"sft", sft_schema, {"data", "init", "out"}},
      {"preferences", preferences_schema, {"policy", "prompts", "world", "out"}},
      {"rm", reward_model_schema, {"sft", "data", "eval_data", "world", "out"}},
      {"reinforce", reinforce_schema, {"policy", "reward_model", "prompts", "eval_prompts", "world", "out"}},
      {"ppo", ppo_schema, {"policy", "reward_model", "prompts", "eval_prompts", "world", "out"}},
      {"dpo", dpo_schema, {"data", "policy", "ref", "out", "world", "eval_prompts"}},
      {"eval", evaluate_schema, {"policy", "ref", "prompts", "world", "out"}},
  };
  return s;
}

// The stage's keys that the user may set through the pipeline config.
std::vector<ConfigKey> stage_keys(const Stage &st) {
  std::vector<ConfigKey> out;
  for (auto k : st.schema()) {
    if (st.wired.count(k.name)) continue;
    k.name = std::string(st.name) + "." + k.name;
    out.push_back(std::move(k));
  }
  return out;
}

// The built-in default: sized so the whole pipeline runs in minutes on two CPU cores.
nlohmann::json demo_defaults() {
  return {
      {"pretrain.steps", 1000}, {"pretrain.batch_size", 16}, {"pretrain.model.ctx", 96}, {"pretrain.lr", 2e-3},
      {"pretrain.warmup", 30}, {"pretrain.log_every", 20},
      // 800 steps over 2000 prompts' pairs: with 400 over 1000, PPO found the reward model's blind
      // spots (it refused every request, KL 14; bench/RESULTS.md).
      {"rm.steps", 800},
      {"reinforce.steps", 80}, {"reinforce.lr", 5e-5},
      {"ppo.steps", 60}, {"ppo.lr", 2e-5},
      // DPO: the annotators flip about a quarter of the labels; cDPO's smoothing assumes 20%.
      {"dpo.epochs", 1}, {"dpo.label_smoothing", 0.2},
  };
}

Config stage_config(const Stage &st, const Config &pipe, const nlohmann::json &wired) {
  Config c(st.schema());
  nlohmann::json flat = nlohmann::json::object();
  std::string prefix = std::string(st.name) + ".";
  for (const auto &k : pipe.keys())
    if (k.rfind(prefix, 0) == 0) flat[k.substr(prefix.size())] = pipe.get(k);
  for (auto &[k, v] : wired.items())
    if (c.has(k)) flat[k] = v;
  c.merge(flat);
  return c;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

std::vector<ConfigKey> pipeline_schema() {
  std::vector<ConfigKey> s = {
      {"out", "runs/pipeline", "folder for every stage's run directory, summary.json and report.html"},
      {"stages", "pretrain,sft,preferences,rm,reinforce,ppo,dpo",
       "stages to train, in order (eval runs after them); a stage left out is reused from `out` if present"},
      {"world.seed", 1234, "seed of the synthetic world", 0.0},
      {"world.n_pretrain_docs", 16000, "pretraining documents", 1.0},
      {"world.n_sft", 300, "SFT demonstrations", 1.0},
      {"world.sft_kinds", "fact,count,repeat", "prompt kinds the SFT demonstrations cover (fact, unknown_fact, greet, count, repeat, harmful)"},
      {"world.sft_slip_fraction", WorldConfig{}.sft_slip_fraction,
       "share of SFT demonstrations ending with a filler sentence (good, not best, answers)", 0.0, 1.0},
      {"world.n_prompts", 2000, "preference/RL prompts", 1.0},
      // 1000 draws from the ~170 distinct held-out prompts, each with its own samples: a win rate's
      // standard error is ~0.015 (0.03 with 200 draws, which the first version used).
      {"world.n_eval_prompts", 1000, "held-out evaluation prompts (drawn with repeats from the held-out pool)", 1.0},
      {"samples", 8, "sample responses per stage in report.html", 0.0},
  };
  for (const auto &st : stages()) {
    auto keys = stage_keys(st);
    s.insert(s.end(), keys.begin(), keys.end());
  }
  // The pipeline's own defaults (a fast, small run) replace the stages' standalone defaults.
  const nlohmann::json defaults = demo_defaults();
  for (auto &[k, v] : defaults.items())
    for (auto &key : s)
      if (key.name == k) key.default_value = v;
  return s;
}

std::string summary_table(const nlohmann::json &summary) {
  auto cell = [](const nlohmann::json &row, const char *k, const char *f) -> std::string {
    if (!row.contains(k) || row[k].is_null()) return "-";
    return fmt::format(fmt::runtime(f), row[k].get<double>());
  };
  std::string t = fmt::format("{:<12} {:>12} {:>16} {:>6} {:>10} {:>12} {:>9}\n", "stage", "oracle score",
                              "win rate vs SFT", "s.e.", "KL to SFT", "RM accuracy", "seconds");
  for (const auto &row : summary)
    t += fmt::format("{:<12} {:>12} {:>16} {:>6} {:>10} {:>12} {:>9}\n", row["stage"].get<std::string>(),
                     cell(row, "oracle_score", "{:+.3f}"), cell(row, "win_rate_vs_sft", "{:.3f}"),
                     cell(row, "win_rate_se", "{:.3f}"), cell(row, "kl_to_sft", "{:.3f}"),
                     cell(row, "rm_accuracy", "{:.3f}"), cell(row, "seconds", "{:.1f}"));
  // Win rate per prompt kind: where each policy gains on SFT and where it only ties.
  std::vector<std::string> kinds;
  for (const auto &row : summary)
    if (row.contains("win_rate_by_kind"))
      for (auto &[k, v] : row["win_rate_by_kind"].items())
        if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  if (kinds.empty()) return t;
  t += "\nwin rate vs SFT by prompt kind\n" + fmt::format("{:<12}", "stage");
  for (const auto &k : kinds) t += fmt::format(" {:>12}", k);
  t += "\n";
  for (const auto &row : summary) {
    if (!row.contains("win_rate_by_kind")) continue;
    t += fmt::format("{:<12}", row["stage"].get<std::string>());
    for (const auto &k : kinds) t += fmt::format(" {:>12}", cell(row["win_rate_by_kind"], k.c_str(), "{:.3f}"));
    t += "\n";
  }
  return t;
}

PipelineResult run_pipeline(const Config &c, bool quiet) {
  namespace fs = std::filesystem;
  std::string out = c.str("out");
  fs::create_directories(out);
  nn::write_file_atomic(out + "/config.json", c.resolved().dump(2) + "\n");
  std::set<std::string> todo;
  {
    std::string s = c.str("stages");
    size_t p = 0;
    while (p <= s.size()) {
      size_t q = s.find(',', p);
      std::string name = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
      if (!name.empty()) {
        bool ok = false;
        for (auto &st : stages()) ok = ok || name == st.name;
        NR_CHECK(ok && name != "eval", "pipeline: unknown stage '{}' in stages; valid: pretrain, sft, preferences, rm, "
                 "reinforce, ppo, dpo", name);
        todo.insert(name);
      }
      if (q == std::string::npos) break;
      p = q + 1;
    }
  }
  auto dir = [&](const std::string &name) { return out + "/" + name; };
  auto log = [&](const std::string &msg) {
    if (!quiet) std::fprintf(stderr, "== %s\n", msg.c_str());
  };

  // 1. The world.
  WorldConfig wc;
  wc.seed = (uint64_t)c.integer("world.seed");
  wc.n_pretrain_docs = (int)c.integer("world.n_pretrain_docs");
  wc.n_sft = (int)c.integer("world.n_sft");
  wc.sft_kinds = c.str("world.sft_kinds");
  wc.sft_slip_fraction = c.num("world.sft_slip_fraction");
  wc.n_prompts = (int)c.integer("world.n_prompts");
  wc.n_eval_prompts = (int)c.integer("world.n_eval_prompts");
  std::string world = dir("world");
  write_world(make_world(wc), world);
  log("world written to " + world);

  const std::map<std::string, nlohmann::json> wiring = {
      {"pretrain", {{"data", world + "/pretrain.jsonl"}, {"out", dir("pretrain")}, {"tokenizer", ""}}},
      {"sft", {{"data", world + "/sft.jsonl"}, {"init", dir("pretrain")}, {"out", dir("sft")}}},
      {"preferences", {{"policy", dir("sft")}, {"prompts", world + "/prompts.jsonl"}, {"world", world}, {"out", dir("preferences")}}},
      {"rm", {{"sft", dir("sft")}, {"data", dir("preferences") + "/train.jsonl"}, {"eval_data", dir("preferences") + "/heldout.jsonl"},
              {"world", world}, {"out", dir("rm")}}},
      // world = "": the trainers skip their own final oracle evaluation; the pipeline evaluates every stage below.
      {"reinforce", {{"policy", dir("sft")}, {"reward_model", dir("rm")}, {"prompts", world + "/prompts.jsonl"},
                     {"eval_prompts", world + "/eval_prompts.jsonl"}, {"world", ""}, {"out", dir("reinforce")}}},
      {"ppo", {{"policy", dir("sft")}, {"reward_model", dir("rm")}, {"prompts", world + "/prompts.jsonl"},
               {"eval_prompts", world + "/eval_prompts.jsonl"}, {"world", ""}, {"out", dir("ppo")}}},
      {"dpo", {{"data", dir("preferences") + "/train.jsonl"}, {"policy", dir("sft")}, {"ref", dir("sft")}, {"out", dir("dpo")},
               {"world", ""}, {"eval_prompts", world + "/eval_prompts.jsonl"}}},
  };
  auto find_stage = [](const std::string &n) -> const Stage & {
    for (auto &st : stages()) if (n == st.name) return st;
    throw Error("internal: no stage " + n);
  };

  std::map<std::string, double> seconds;
  double rm_accuracy = std::nan("");
  for (const char *name : {"pretrain", "sft", "preferences", "rm", "reinforce", "ppo", "dpo"}) {
    if (!todo.count(name)) continue;
    log(std::string("stage ") + name);
    Config sc = stage_config(find_stage(name), c, wiring.at(name));
    auto t0 = std::chrono::steady_clock::now();
    std::string n = name;
    if (n == "pretrain") pretrain(sc, quiet);
    else if (n == "sft") run_sft(sc, quiet);
    else if (n == "preferences") run_preferences(sc, quiet);
    else if (n == "rm") rm_accuracy = run_reward_model(sc, quiet).eval.rm_accuracy;
    else if (n == "reinforce") run_reinforce(sc, quiet);
    else if (n == "ppo") run_ppo(sc, quiet);
    else if (n == "dpo") run_dpo(sc, quiet);
    seconds[n] = seconds_since(t0);
  }

  // Evaluate every policy that exists against SFT on the held-out prompts, with the same seed.
  nlohmann::json summary = nlohmann::json::array();
  std::vector<ReportSample> samples;
  const Oracle oracle = Oracle::from_world_dir(world);
  for (const char *name : {"pretrain", "sft", "reinforce", "ppo", "dpo"}) {
    if (!fs::exists(dir(name) + "/model.safetensors")) continue;
    log(std::string("eval ") + name);
    Config ec = stage_config(find_stage("eval"), c,
                             {{"policy", dir(name)}, {"ref", dir("sft")}, {"prompts", world + "/eval_prompts.jsonl"},
                              {"world", world}, {"out", dir("eval") + "/" + name}});
    auto t0 = std::chrono::steady_clock::now();
    EvalResult r = run_evaluate(ec);
    nlohmann::json row = {{"stage", name},
                          {"oracle_score", r.oracle_reward},
                          {"win_rate_vs_sft", r.win_rate},
                          {"win_rate_se", r.win_rate_se},
                          {"kl_to_sft", r.kl_to_ref},
                          {"response_length", r.response_length},
                          {"finished", r.finished},
                          {"seconds", seconds.count(name) ? seconds[name] : 0.0},
                          {"eval_seconds", seconds_since(t0)}};
    if (std::string(name) != "sft") {  // where the policy gains on SFT, kind by kind (SFT ties itself)
      const nlohmann::json kinds = by_kind(r, oracle);
      row["win_rate_by_kind"] = nlohmann::json::object();
      for (auto &[kind, k] : kinds.items()) row["win_rate_by_kind"][kind] = k["win_rate_vs_sft"];
    }
    summary.push_back(row);
    if (std::string(name) == "sft" && !std::isnan(rm_accuracy)) {  // the reward model's row sits after SFT's
      summary.push_back({{"stage", "rm"}, {"rm_accuracy", rm_accuracy}, {"seconds", seconds.count("rm") ? seconds["rm"] : 0.0},
                         {"oracle_score", nullptr}, {"win_rate_vs_sft", nullptr}, {"kl_to_sft", nullptr}});
    }
    for (size_t i = 0; i < r.rows.size() && i < (size_t)c.integer("samples"); ++i) {
      if (samples.size() <= i) samples.push_back({r.rows[i].prompt, {}});
      samples[i].responses.emplace_back(name, r.rows[i].response);
    }
  }
  nn::write_file_atomic(out + "/summary.json", summary.dump(2) + "\n");

  std::vector<Chart> charts;
  auto chart = [&](const std::string &title, const std::string &stage, const std::vector<std::string> &keys) {
    std::string m = dir(stage) + "/metrics.jsonl";
    if (fs::exists(m)) charts.push_back({title, curves_from_metrics(m, keys)});
  };
  chart("pretraining loss", "pretrain", {"loss"});
  chart("SFT loss", "sft", {"loss"});
  chart("reward model: loss and accuracy", "rm", {"loss", "accuracy"});
  chart("REINFORCE: reward and KL", "reinforce", {"objective/scores", "objective/rlhf_reward", "objective/kl"});
  chart("PPO: reward and KL", "ppo", {"objective/scores", "objective/rlhf_reward", "objective/kl"});
  chart("PPO: losses", "ppo", {"loss/policy_avg", "loss/value_avg", "policy/clipfrac_avg"});
  chart("DPO: implicit rewards", "dpo", {"rewards/chosen", "rewards/rejected", "rewards/margins"});
  chart("DPO: accuracy", "dpo", {"rewards/accuracies"});
  write_report_html(out + "/report.html", summary, charts, samples);
  return {summary, out};
}

}  // namespace nanorlhf::rlhf
