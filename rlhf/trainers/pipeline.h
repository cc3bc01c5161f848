// The whole alignment pipeline from one config: world -> pretrain -> SFT -> preferences -> reward
// model -> REINFORCE, PPO, DPO -> evaluation of every stage, with summary.json and report.html.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/config.h"

namespace nanorlhf::rlhf {

// out, seed, stages, world.*, and every stage's own keys under its name (pretrain.*, sft.*,
// preferences.*, rm.*, reinforce.*, ppo.*, dpo.*, eval.*), minus the paths the pipeline wires.
std::vector<ConfigKey> pipeline_schema();
// The built-in default's values that differ from the stages' own ("reinforce.steps": 80, ...), also
// the settings `nanorlhf compare` trains its methods with.
nlohmann::json demo_defaults();

struct PipelineResult {
  nlohmann::json summary;  // one object per stage: stage, oracle_score, win_rate_vs_sft, kl_to_sft, seconds (+ rm_accuracy)
  std::string out;
  double seconds = 0;      // the whole pipeline's wall time
};

// Runs the stages in order; each writes its run directory under `out`. quiet: no progress lines.
PipelineResult run_pipeline(const Config &c, bool quiet = false);

// The summary as fixed-width text tables (what `nanorlhf pipeline` prints): one row per stage, then
// the win rate per prompt kind of every row that has "win_rate_by_kind".
std::string summary_table(const nlohmann::json &summary);

}  // namespace nanorlhf::rlhf
