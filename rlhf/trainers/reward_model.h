// The reward model (lecture: "Reward model"): a scalar head on the SFT backbone trained on preference
// pairs with the Bradley-Terry loss; held-out accuracy and agreement with the noiseless oracle.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "rlhf/data.h"
#include "rlhf/options.h"
#include "rlhf/oracle.h"
#include "rlhf/training_loop.h"

namespace nanorlhf::rlhf {

struct RewardConfig {
  std::string sft = "runs/sft";  // the backbone and the tokenizer
  std::string data = "runs/preferences/train.jsonl";
  std::string eval_data = "runs/preferences/heldout.jsonl";  // empty = none
  std::string world = "data";    // the noiseless oracle rm_accuracy compares against; empty = skip
  std::string out = "runs/rm";
  bool overwrite = false;
  std::string resume = "";  // "" = a new run; latest or a checkpoint-N folder of out
  double margin = 0.0;           // m in -log sigmoid(r_w - r_l - m) (Llama 2)
  bool normalize = true;         // training responses score mean 0, std 1
  uint64_t seed = 1;
  int64_t batch_size = 32;
  std::string device = "cpu";
  LoopOptions loop{.steps = 300};
  optim::OptimConfig optim{.lr = 3e-4, .weight_decay = 0.0, .warmup = 20};
};
const OptionTable<RewardConfig> &reward_options();

// r(x, y_w) and r(x, y_l) of pairs[rows]: one right-padded batch of the 2B sequences, split. [B] each.
struct PairScores {
  Tensor chosen, rejected;
};
PairScores score_pairs(const nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs,
                       const std::vector<size_t> &rows, int64_t pad_id);

struct PairEval {
  double loss = 0, accuracy = 0, margin = 0;  // against the (noisy) labels of the file
  double rm_accuracy = 0;                     // agreement with the noiseless oracle where its scores differ
  int64_t pairs = 0, oracle_pairs = 0;        // pairs evaluated; pairs the oracle decides
};
// No-grad evaluation in batches. oracle may be null (rm_accuracy then stays 0).
PairEval evaluate_pairs(const nn::ScalarModel &rm, const std::vector<PreferencePair> &pairs, int64_t pad_id,
                        const Oracle *oracle, int64_t batch = 64);

struct RewardModelResult {
  std::vector<double> losses, accuracies;  // every training step
  PairEval eval;                           // held-out pairs at the end
  double reward_mean = 0, reward_std = 1;  // of the training responses before normalisation
  std::string run_dir;
};

// Trains, logs TRL's loss / accuracy / margin, the held-out eval/loss, eval/accuracy and rm_accuracy,
// normalises the head so the training responses (SFT samples) score mean 0, std 1, and saves.
RewardModelResult run_reward_model(const RewardConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
