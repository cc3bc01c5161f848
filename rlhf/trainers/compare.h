// `nanorlhf compare`: every policy method nanorlhf has, trained from one SFT model and one reward
// model over several seeds, evaluated against SFT by the oracle: which method wins, and by how much,
// as mean +- standard error over seeds (one seed proves nothing: lecture 01, "Evaluation").
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/config.h"

namespace nanorlhf::rlhf {

// One row of the comparison: a name, the stage that trains it ("" = best-of-n sampling from SFT,
// which trains nothing) and its own settings on top of the demo's.
struct CompareMethod {
  std::string name, stage, help;
  nlohmann::json settings;  // flat keys of the stage
};
const std::vector<CompareMethod> &compare_methods();

// out, from, seeds, methods, eval_size, best_of_n, and every method's stage keys under its name
// ("ppo.steps", "cdpo.label_smoothing"), with the demo's and the method's defaults.
std::vector<ConfigKey> compare_schema();

struct CompareResult {
  nlohmann::json runs;   // one object per method and seed
  nlohmann::json table;  // one object per method: mean and s.e. over seeds of every measure
  std::string out;
  double seconds = 0;
};

// Builds the pipeline's prefix (world, pretrain, SFT, preferences, RM) in `from` unless it is
// there, then trains and evaluates every method for every seed; writes compare.json and
// report.html to `out`, each method's runs to out/<method>/seed<k>/.
CompareResult run_compare(const Config &c, bool quiet = false);

// The table as fixed-width text (what `nanorlhf compare` prints).
std::string compare_table(const nlohmann::json &table);

}  // namespace nanorlhf::rlhf
