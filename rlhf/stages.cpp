// The registry's entries: each binds a command to its options table and run_* function, and says what it wrote.
#include "rlhf/stages.h"

#include <cmath>

#include <fmt/format.h>

#include "rlhf/evaluation.h"
#include "rlhf/trainers/compare.h"
#include "rlhf/trainers/dpo.h"
#include "rlhf/trainers/grpo.h"
#include "rlhf/trainers/kto.h"
#include "rlhf/trainers/online_dpo.h"
#include "rlhf/trainers/overoptimization.h"
#include "rlhf/trainers/pipeline.h"
#include "rlhf/trainers/ppo.h"
#include "rlhf/trainers/preferences.h"
#include "rlhf/trainers/pretrain.h"
#include "rlhf/trainers/raft.h"
#include "rlhf/trainers/reinforce.h"
#include "rlhf/trainers/reward_model.h"
#include "rlhf/trainers/sft.h"
#include "rlhf/world.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace {

// A stage whose options are a table's struct: the schema is the table's, run reads and runs.
template <class T, class Run>
Stage make_stage(std::string name, std::string help, const OptionTable<T> &(*options)(), Run run) {
  return {std::move(name), std::move(help), [options] { return options().schema(); },
          [options, run](const Config &c, bool quiet) { return run(options().read(c), quiet); }};
}

std::string wrote_run(const std::string &out) {
  return fmt::format("wrote {}/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt", out);
}

// `nanorlhf world`: the world's options and the folder to write.
struct WorldCommand {
  std::string out = "data";
  WorldConfig world;
};
const OptionTable<WorldCommand> &world_command_options() {
  static const OptionTable<WorldCommand> t = [] {
    OptionTable<WorldCommand> t;
    t.add("out", &WorldCommand::out,
          "folder to write pretrain.jsonl, sft.jsonl, prompts.jsonl, eval_prompts.jsonl, world.json")
        .include(&WorldCommand::world, world_options());
    return t;
  }();
  return t;
}

std::vector<Stage> make_stages() {
  std::vector<Stage> s;
  s.push_back(make_stage("world", "write the default synthetic world's datasets (pretrain/sft/prompts/eval JSONL)",
                         world_command_options, [](const WorldCommand &w, bool) {
                           World world = make_world(w.world);
                           write_world(world, w.out);
                           return StageResult{fmt::format(
                               "wrote {}/: pretrain.jsonl ({} docs), sft.jsonl ({}), prompts.jsonl ({}), "
                               "eval_prompts.jsonl ({}), world.json ({} entities)",
                               w.out, world.pretrain.size(), world.sft.size(), world.prompts.size(),
                               world.eval_prompts.size(), world.kb.entities.size())};
                         }));
  s.push_back(make_stage("pretrain", "pretrain a GPT on a {\"text\"} JSONL corpus", pretrain_options,
                         [](const PretrainConfig &o, bool quiet) {
                           PretrainResult r = run_pretrain(o, quiet);
                           std::string m = fmt::format("pretrain: {} steps on {} corpus tokens; final loss {:.4f}",
                                                       r.losses.size(), r.tokens, r.losses.empty() ? NAN : r.losses.back());
                           if (std::isfinite(r.eval_loss)) m += fmt::format(", held-out loss {:.4f}", r.eval_loss);
                           return StageResult{m + "\n" + wrote_run(r.run_dir)};
                         }));
  s.push_back(make_stage("sft", "supervised fine-tuning of a pretrained run on chat demonstrations", sft_options,
                         [](const SFTConfig &o, bool quiet) {
                           SftResult r = run_sft(o, quiet);
                           return StageResult{fmt::format("sft: {} steps on {} demonstrations; final loss {:.4f}\n{}",
                                                          r.losses.size(), r.examples,
                                                          r.losses.empty() ? 0.0 : r.losses.back(), wrote_run(r.run_dir))};
                         }));
  s.push_back(make_stage("preferences",
                         "sample K responses per prompt from the SFT policy and label pairs with the noisy oracle",
                         preferences_options, [](const PreferencesConfig &o, bool quiet) {
                           PreferencesResult r = run_preferences(o, quiet);
                           return StageResult{fmt::format("preferences: {} train pairs -> {}, {} held-out pairs -> {}",
                                                          r.train_pairs, r.train_path, r.heldout_pairs, r.heldout_path)};
                         }));
  s.push_back(make_stage("rm", "train the Bradley-Terry reward model on preference pairs", reward_options,
                         [](const RewardConfig &o, bool quiet) {
                           RewardModelResult r = run_reward_model(o, quiet);
                           std::string m = fmt::format("rm: {} steps; final train loss {:.4f}", r.losses.size(),
                                                       r.losses.empty() ? 0.0 : r.losses.back());
                           if (r.eval.pairs > 0)
                             m += fmt::format("; held-out accuracy {:.3f}, rm_accuracy {:.3f} (vs the noiseless "
                                              "oracle, {} pairs)", r.eval.accuracy, r.eval.rm_accuracy, r.eval.oracle_pairs);
                           m += fmt::format("\nwrote {}/: model.safetensors, config.json, tokenizer.json, metrics.jsonl",
                                            r.run_dir);
                           nlohmann::json res = nlohmann::json::object();
                           if (r.eval.pairs > 0) res["rm_accuracy"] = r.eval.rm_accuracy;
                           return StageResult{m, res};
                         }));
  s.push_back(make_stage("reinforce", "REINFORCE (moving-average or RLOO baseline) on the reward model, KL to SFT",
                         reinforce_options, [](const ReinforceConfig &o, bool quiet) {
                           run_reinforce(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("ppo", "PPO on the reward model: per-token KL penalty, GAE, clipped policy and value losses",
                         ppo_options, [](const PPOConfig &o, bool quiet) {
                           run_ppo(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("dpo", "DPO and kin (ipo, hinge/SLiC, simpo, cDPO label smoothing) on preference pairs",
                         dpo_options, [](const DPOConfig &o, bool quiet) {
                           run_dpo(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("kto", "KTO on unpaired thumbs-up/down examples (or preference pairs, unpaired)",
                         kto_options, [](const KTOConfig &o, bool quiet) {
                           run_kto(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("raft", "RAFT: sample K per prompt, keep the best by the reward model, fine-tune on it",
                         raft_options, [](const RaftConfig &o, bool quiet) {
                           run_raft(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("online_dpo",
                         "iterative DPO: each round samples K, pairs best vs worst by the reward model, DPO from the "
                         "last round",
                         online_dpo_options, [](const OnlineDPOConfig &o, bool quiet) {
                           run_online_dpo(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("grpo",
                         "GRPO: sample G per prompt, group-relative advantages, clipped loss; on the reward model, "
                         "the verifier or both",
                         grpo_options, [](const GRPOConfig &o, bool quiet) {
                           run_grpo(o, quiet);
                           return StageResult{wrote_run(o.run.out)};
                         }));
  s.push_back(make_stage("eval", "evaluate a policy against the SFT reference with the oracle", eval_options,
                         [](const EvalConfig &o, bool) {
                           EvalResult r = run_evaluate(o);
                           return StageResult{fmt::format(
                               "eval of {} vs {} on {} prompts:\n"
                               "  eval/oracle_reward    {:+.3f}  (reference {:+.3f})\n"
                               "  eval/win_rate_vs_sft  {:.3f}  (s.e. {:.3f})\n"
                               "  eval/kl_to_ref        {:.3f}\n"
                               "  eval/response_length  {:.1f} tokens ({:.0f}% ended with <|eos|>)\n"
                               "  helpful {:+.3f}  honest {:+.3f}  harmless {:+.3f}\n{}"
                               "wrote {}/: metrics.jsonl, eval.json, samples.txt, rows.jsonl",
                               o.policy, o.ref, r.rows.size(), r.oracle_reward, r.ref_oracle_reward, r.win_rate,
                               r.win_rate_se, r.kl_to_ref, r.response_length, 100 * r.finished, r.helpful, r.honest,
                               r.harmless,
                               r.verifiable == 0 ? std::string()
                                                 : fmt::format("  eval/accuracy        {:.3f}  (reference {:.3f}; the "
                                                               "verifier on {} checkable prompts)\n",
                                                               r.accuracy, r.ref_accuracy, r.verifiable),
                               o.out)};
                         }));
  s.push_back({"pipeline",
               "the whole pipeline from one config: world, pretrain, SFT, preferences, RM, REINFORCE, PPO, DPO, eval",
               pipeline_schema, [](const Config &c, bool quiet) {
                 PipelineResult r = run_pipeline(c, quiet);
                 return StageResult{fmt::format("\n{}\npipeline finished in {:.0f} s; wrote {}/summary.json and "
                                                "{}/report.html",
                                                summary_table(r.summary), r.seconds, r.out, r.out)};
               }});
  s.push_back({"compare",
               "every policy method from one SFT model and one reward model over seeds: oracle score, win rate, KL, "
               "RM score as mean +- s.e.",
               compare_schema, [](const Config &c, bool quiet) {
                 CompareResult r = run_compare(c, quiet);
                 return StageResult{fmt::format("\n{}\ncompare finished in {:.0f} s; wrote {}/compare.json and {}/report.html",
                                                compare_table(r.table), r.seconds, r.out, r.out)};
               }});
  s.push_back(make_stage("overoptimization",
                         "reward over-optimisation (Gao et al. 2022): best-of-n and RL without KL on RMs of several "
                         "data sizes, gold vs proxy against sqrt(KL), fits",
                         overoptimization_options, [](const OveroptimizationConfig &o, bool quiet) {
                           OveroptimizationResult r = run_overoptimization(o, quiet);
                           return StageResult{fmt::format("\n{}\nwrote {}/overoptimization.json and {}/report.html",
                                                          r.table, o.out, o.out)};
                         }));
  return s;
}

}  // namespace

const std::vector<Stage> &stages() {
  static const std::vector<Stage> s = make_stages();
  return s;
}

std::vector<ConfigKey> prefixed_stage_keys(const std::string &stage, const std::string &prefix,
                                           const nlohmann::json &wired) {
  std::vector<ConfigKey> out;
  for (auto k : find_stage(stage).schema()) {
    if (wired.contains(k.name)) continue;
    k.name = prefix + "." + k.name;
    out.push_back(std::move(k));
  }
  return out;
}

Config prefixed_stage_config(const std::string &stage, const std::string &prefix, const Config &study,
                             const nlohmann::json &wired) {
  Config c(find_stage(stage).schema());
  nlohmann::json flat = nlohmann::json::object();
  const std::string p = prefix + ".";
  for (const auto &k : study.keys())
    if (k.rfind(p, 0) == 0) flat[k.substr(p.size())] = study.get(k);
  for (auto &[k, v] : wired.items())
    if (c.has(k)) flat[k] = v;
  c.merge(flat);
  return c;
}

const Stage &find_stage(const std::string &name) {
  std::string valid;
  for (const auto &st : stages()) {
    if (st.name == name) return st;
    valid += (valid.empty() ? "" : ", ") + st.name;
  }
  throw Error(fmt::format("unknown stage '{}'; valid: {}", name, valid));
}

}  // namespace nanorlhf::rlhf
