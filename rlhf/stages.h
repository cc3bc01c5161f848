// The stage registry: every command that runs from a config (world, pretrain, sft, preferences, rm,
// reinforce, ppo, dpo, raft, online_dpo, eval, pipeline) with its help, its config schema and its
// run function. The command line and the pipeline both read this one table.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/config.h"

namespace nanorlhf::rlhf {

struct StageResult {
  std::string message;    // what the command prints when it is done
  nlohmann::json result = {};  // what the pipeline reads back (rm: rm_accuracy), else {}
};

struct Stage {
  std::string name, help;
  std::function<std::vector<ConfigKey>()> schema;
  // Reads the stage's options from a config of its schema and runs it. quiet: no progress lines.
  std::function<StageResult(const Config &, bool quiet)> run;
};

const std::vector<Stage> &stages();
// Throws "unknown stage" listing the valid names.
const Stage &find_stage(const std::string &name);

// A study that runs stages (pipeline, compare) offers each stage's keys under a prefix
// ("ppo.steps"), minus the keys it wires itself.
std::vector<ConfigKey> prefixed_stage_keys(const std::string &stage, const std::string &prefix,
                                           const nlohmann::json &wired);
// The stage's config: its schema's defaults, the study config's "<prefix>.*" values, the wired keys.
Config prefixed_stage_config(const std::string &stage, const std::string &prefix, const Config &study,
                             const nlohmann::json &wired);

}  // namespace nanorlhf::rlhf
