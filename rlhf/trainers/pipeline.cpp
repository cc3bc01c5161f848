// The pipeline wires each stage's inputs to the previous stages' run directories, runs them through
// the stage registry, evaluates every policy against SFT with the oracle, and writes summary.json
// and report.html.
#include "rlhf/trainers/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "rlhf/evaluation.h"
#include "rlhf/report.h"
#include "rlhf/stages.h"
#include "rlhf/world.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace {

// The trainable stages in order. wired(world, dir) gives the keys the pipeline sets from earlier
// stages' outputs (the user cannot set them); policy: the stage writes a policy evaluated against SFT.
struct PipelineStage {
  const char *name;
  bool policy;
  std::function<nlohmann::json(const std::string &world, const std::function<std::string(const char *)> &dir)> wired;
};

const std::vector<PipelineStage> &pipeline_stages() {
  using Dir = std::function<std::string(const char *)>;
  using nlohmann::json;
  // world = "" for the policy trainers: they skip their own final oracle evaluation; the pipeline
  // evaluates every policy below, all with the same settings.
  static const std::vector<PipelineStage> s = {
      {"pretrain", true, [](const std::string &w, const Dir &d) {
         return json{{"data", w + "/pretrain.jsonl"}, {"out", d("pretrain")}, {"tokenizer", ""}};
       }},
      {"sft", true, [](const std::string &w, const Dir &d) {
         return json{{"data", w + "/sft.jsonl"}, {"init", d("pretrain")}, {"out", d("sft")}};
       }},
      {"preferences", false, [](const std::string &w, const Dir &d) {
         return json{{"policy", d("sft")}, {"prompts", w + "/prompts.jsonl"}, {"world", w}, {"out", d("preferences")}};
       }},
      {"rm", false, [](const std::string &w, const Dir &d) {
         return json{{"sft", d("sft")}, {"data", d("preferences") + "/train.jsonl"},
                     {"eval_data", d("preferences") + "/heldout.jsonl"}, {"world", w}, {"out", d("rm")}};
       }},
      {"reinforce", true, [](const std::string &w, const Dir &d) {
         return json{{"policy", d("sft")}, {"reward_model", d("rm")}, {"prompts", w + "/prompts.jsonl"},
                     {"eval_prompts", w + "/eval_prompts.jsonl"}, {"world", ""}, {"out", d("reinforce")}};
       }},
      {"ppo", true, [](const std::string &w, const Dir &d) {
         return json{{"policy", d("sft")}, {"reward_model", d("rm")}, {"prompts", w + "/prompts.jsonl"},
                     {"eval_prompts", w + "/eval_prompts.jsonl"}, {"world", ""}, {"out", d("ppo")}};
       }},
      {"dpo", true, [](const std::string &w, const Dir &d) {
         return json{{"data", d("preferences") + "/train.jsonl"}, {"policy", d("sft")}, {"ref", d("sft")},
                     {"out", d("dpo")}, {"world", ""}, {"eval_prompts", w + "/eval_prompts.jsonl"}};
       }},
  };
  return s;
}

// The keys the pipeline sets for eval (the evaluation of every policy against SFT).
nlohmann::json eval_wiring(const std::string &world, const std::string &policy, const std::string &sft,
                           const std::string &out) {
  return {{"policy", policy}, {"ref", sft}, {"prompts", world + "/eval_prompts.jsonl"}, {"world", world}, {"out", out}};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const auto no_dir = [](const char *) { return std::string(); };

}  // namespace

// The built-in default: sized so the whole pipeline runs in minutes on two CPU cores.
nlohmann::json demo_defaults() {
  return {
      // 1000 draws from the ~170 distinct held-out prompts, each with its own samples: a win rate's
      // standard error is ~0.015 (0.03 with 200 draws, which the first version used).
      {"world.n_prompts", 2000}, {"world.n_eval_prompts", 1000},
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

std::vector<ConfigKey> pipeline_schema() {
  std::vector<ConfigKey> s = {
      {"out", "runs/pipeline", "folder for every stage's run directory, summary.json and report.html"},
      {"overwrite", false, "replace the pipeline run already in `out`, stage by stage as each finishes"},
      {"resume", false, "continue the killed pipeline in `out`: finished stages are kept, the one that was running "
                        "continues from its newest checkpoint (save_every), the rest run"},
      {"save_every", 0, "steps between every training stage's checkpoint-N folders (resume continues from them); "
                        "0 = none", 0.0},
      {"stages", "pretrain,sft,preferences,rm,reinforce,ppo,dpo",
       "stages to train, in order (eval runs after them); a stage left out is reused from `out` if present"},
      {"samples", 8, "sample responses per stage in report.html", 0.0},
  };
  for (auto k : world_options().schema()) {
    k.name = "world." + k.name;
    s.push_back(std::move(k));
  }
  for (const auto &st : pipeline_stages()) {
    nlohmann::json w = st.wired("", no_dir);
    w["overwrite"] = false;  // the pipeline's own overwrite, resume and save_every keys
    w["resume"] = "";
    w["save_every"] = 0;
    auto keys = prefixed_stage_keys(st.name, st.name, w);
    s.insert(s.end(), keys.begin(), keys.end());
  }
  nlohmann::json ew = eval_wiring("", "", "", "");
  ew["overwrite"] = false;
  auto eval_keys = prefixed_stage_keys("eval", "eval", ew);
  s.insert(s.end(), eval_keys.begin(), eval_keys.end());
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
  const auto t_start = std::chrono::steady_clock::now();
  std::string out = c.str("out");
  std::set<std::string> todo;
  {
    std::string valid;
    for (const auto &st : pipeline_stages()) valid += (valid.empty() ? "" : ", ") + std::string(st.name);
    for (const std::string &name : split_comma_list(c.str("stages"))) {
      bool ok = false;
      for (const auto &st : pipeline_stages()) ok = ok || name == st.name;
      NR_CHECK(ok, "pipeline: unknown stage '{}' in stages; valid: {}", name, valid);
      todo.insert(name);
    }
  }
  const bool resume = c.flag("resume");
  NR_CHECK(resume || c.flag("overwrite") || !fs::exists(out + "/config.json"),
           "pipeline: {} holds a pipeline run already (config.json); give --overwrite to replace it (each stage's "
           "folder is replaced once that stage has finished), --resume to continue it, or another out", out);
  // pipeline_state.json: the stages finished so far with their results, what `resume` keeps.
  const std::string state_file = out + "/pipeline_state.json";
  nlohmann::json done = nlohmann::json::object();
  if (resume && fs::exists(state_file)) {
    const nlohmann::json saved = nlohmann::json::parse(nn::read_file(state_file));
    std::vector<std::string> differ;
    const nlohmann::json now = c.resolved();
    for (const auto &[k, v] : now.items())
      if (k != "resume" && k != "overwrite" && k != "save_every" && saved["config"].value(k, nlohmann::json()) != v)
        differ.push_back(k);
    NR_CHECK(differ.empty(), "pipeline: resume with other settings than the run in {}: {}; resume with its settings "
             "(its config.json), or start a new run", out, fmt::format("{}", fmt::join(differ, ", ")));
    done = saved["done"];
  }
  fs::create_directories(out);
  nn::write_file_atomic(out + "/config.json", c.resolved().dump(2) + "\n");
  auto save_state = [&] {
    nn::write_file_atomic(state_file, nlohmann::json{{"config", c.resolved()}, {"done", done}}.dump(2) + "\n");
  };
  save_state();
  auto dir = [&](const std::string &name) { return out + "/" + name; };
  auto log = [&](const std::string &msg) {
    if (!quiet) std::fprintf(stderr, "== %s\n", msg.c_str());
  };

  // 1. The world.
  Config wc(world_options().schema());
  nlohmann::json flat = nlohmann::json::object();
  for (const auto &k : wc.keys()) flat[k] = c.get("world." + k);
  wc.merge(flat);
  const std::string world = out + "/world";
  write_world(make_world(world_options().read(wc)), world);
  log("world written to " + world);

  // 2. Every stage asked for, in order, each from the run directories of the stages before it.
  std::map<std::string, double> seconds;
  double rm_accuracy = std::nan("");
  for (const auto &st : pipeline_stages()) {
    if (!todo.count(st.name)) continue;
    if (done.contains(st.name)) {  // finished before the pipeline was killed
      log(std::string("stage ") + st.name + ": finished before, kept");
    } else {
      log(std::string("stage ") + st.name);
      nlohmann::json wired = st.wired(world, dir);
      // A resumed stage continues its own run; one that finished (or never began) after the last
      // record, or that has no checkpoints, runs again over what it left.
      wired["overwrite"] = c.flag("overwrite") || resume;
      wired["resume"] = resume ? "latest" : "";
      wired["save_every"] = c.integer("save_every");
      Config sc = prefixed_stage_config(st.name, st.name, c, wired);
      auto t0 = std::chrono::steady_clock::now();
      StageResult r = find_stage(st.name).run(sc, quiet);
      done[st.name] = {{"seconds", seconds_since(t0)}, {"result", r.result}};
      save_state();
    }
    seconds[st.name] = done[st.name]["seconds"].get<double>();
    const nlohmann::json &result = done[st.name]["result"];
    if (result.contains("rm_accuracy") && result["rm_accuracy"].is_number())
      rm_accuracy = result["rm_accuracy"].get<double>();
  }

  // 3. Evaluate every policy that exists against SFT on the held-out prompts, with the same seed.
  nlohmann::json summary = nlohmann::json::array();
  std::vector<ReportSample> samples;
  const Oracle oracle = Oracle::from_world_dir(world);
  for (const auto &st : pipeline_stages()) {
    const std::string name = st.name;
    if (!st.policy || !fs::exists(dir(st.name) + "/model.safetensors")) continue;
    log("eval " + name);
    nlohmann::json ew = eval_wiring(world, dir(st.name), dir("sft"), out + "/eval/" + name);
    ew["overwrite"] = c.flag("overwrite") || resume;
    Config ec = prefixed_stage_config("eval", "eval", c, ew);
    auto t0 = std::chrono::steady_clock::now();
    EvalResult r = run_evaluate(eval_options().read(ec));
    nlohmann::json row = {{"stage", name},
                          {"oracle_score", r.oracle_reward},
                          {"win_rate_vs_sft", r.win_rate},
                          {"win_rate_se", r.win_rate_se},
                          {"kl_to_sft", r.kl_to_ref},
                          {"response_length", r.response_length},
                          {"finished", r.finished},
                          {"seconds", seconds.count(name) ? seconds[name] : 0.0},
                          {"eval_seconds", seconds_since(t0)}};
    if (name != "sft") {  // where the policy gains on SFT, kind by kind (SFT ties itself)
      const nlohmann::json kinds = by_kind(r, oracle);
      row["win_rate_by_kind"] = nlohmann::json::object();
      for (auto &[kind, k] : kinds.items()) row["win_rate_by_kind"][kind] = k["win_rate_vs_sft"];
    }
    summary.push_back(row);
    if (name == "sft" && !std::isnan(rm_accuracy)) {  // the reward model's row sits after SFT's
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
  return {summary, out, seconds_since(t_start)};
}

}  // namespace nanorlhf::rlhf
