// The reward over-optimisation study (Gao, Schulman, Hilton 2022; lecture 11): reward models trained
// on more or fewer preference pairs, each optimised by best-of-n and by RL with no KL penalty; the
// proxy (the RM) and the gold (the oracle) score against d = sqrt(KL to SFT), and Gao et al.'s fits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/options.h"
#include "rlhf/trainers/reinforce.h"
#include "rlhf/trainers/reward_model.h"

namespace nanorlhf::rlhf {

struct OveroptimizationConfig {
  std::string out = "runs/overoptimization";
  bool overwrite = false;                  // replace the study (and its runs) already in out
  // A pipeline run folder holding world/, sft/ and preferences/ (e.g. runs/demo); empty = build
  // them with the pipeline's defaults in out/prefix (reused there if present).
  std::string from;
  std::string rm_pairs = "250,1000,4000";  // training pairs of each reward model, a nested random draw
  bool train_rm = true;                    // false: reuse out/rm_<pairs> from an earlier run
  int64_t bon_max_n = 256;                 // best-of-n for n = 1, 2, 4, ..., bon_max_n
  int64_t bon_prompts = 64;                // held-out prompts, each sampled bon_max_n times
  std::string bon_estimator = "unbiased";  // unbiased: every n-subset of the samples; nested: the first n
  int64_t bon_batch = 64;                  // responses per generate call
  uint64_t seed = 1;                       // the pair draw and the best-of-n samples
  std::string device = "cpu";
  RewardConfig rm{.loop = {.steps = 400}};
  // No KL penalty: the RL run climbs the proxy as far as it can. lr 5e-5 (the pipeline's REINFORCE
  // lr): at 1e-4 the policy on the 4000-pair RM collapsed ("SorrySorry...", KL 153 by step 200) and
  // its points past d = 4 left the RL form unfittable (peak d 0.03).
  ReinforceConfig rl = [] {
    ReinforceConfig r;
    r.beta = 0.0;
    r.loop = {.steps = 200, .log_every = 10, .eval_every = 20};
    r.optim = policy_optim(5e-5);
    return r;
  }();
  void validate() const;
  std::vector<int64_t> pair_counts() const;  // rm_pairs parsed
};
const OptionTable<OveroptimizationConfig> &overoptimization_options();

// One measured point: a reward model, a method ("bon" or "rl") at n or step, its KL to SFT, the
// gold (oracle) and proxy (RM) mean scores.
struct OveroptPoint {
  int64_t rm_pairs = 0;
  std::string method;
  int64_t n = 0, step = 0;  // n for best-of-n, step for RL
  double kl = 0, d = 0, gold = 0, proxy = 0;
};

struct OveroptimizationResult {
  std::vector<OveroptPoint> points;
  nlohmann::json fits;  // per reward model and method: alpha, beta, peak_d, ...
  std::string table;    // the terminal table of the fits
};

// The expected best-of-n gold and proxy of one prompt's samples for every n = 1, 2, 4, ..., N
// (estimator "unbiased" or "nested"; proxy/gold indexed alike). Returned as {n, gold, proxy} rows.
struct BonRow {
  int64_t n;
  double gold, proxy;
};
std::vector<BonRow> best_of_n_curve(const std::vector<double> &proxy, const std::vector<double> &gold,
                                    const std::string &estimator);

// Writes out/overoptimization.json and out/report.html, plus the runs it trains (rm_<pairs>,
// rl_<pairs>) and, without `from`, the prefix.
OveroptimizationResult run_overoptimization(const OveroptimizationConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
