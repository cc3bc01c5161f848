// The reward model (lecture: "Reward model"): a scalar head on the SFT backbone trained on preference
// pairs with the Bradley-Terry loss; held-out accuracy and agreement with the noiseless oracle.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/config.h"
#include "rlhf/data.h"
#include "rlhf/oracle.h"

namespace nanorlhf::rlhf {

// A preference pair as tokens: chat template of (prompt, response), <|eos|> closing a finished response.
struct PreferencePair {
  std::string prompt, chosen, rejected;
  bool chosen_finished = true, rejected_finished = true;
  std::vector<int64_t> chosen_ids, rejected_ids;
  std::string source;  // "path:line"
};

// Reads a {"prompt","chosen","rejected"} JSONL (optional "chosen_finished"/"rejected_finished",
// default true) and tokenizes it. Errors name "path:line": a missing field, an empty response, a
// pair that does not fit the context ctx.
std::vector<PreferencePair> read_preference_pairs(const std::string &path, const nn::Tokenizer &tok, int64_t ctx);

// (prompt, response) -> <|bos|><|user|>prompt<|assistant|>response[<|eos|>]
std::vector<int64_t> encode_pair_side(const nn::Tokenizer &tok, const std::string &prompt, const std::string &response,
                                      bool finished);

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

// Reward-model run directories: model.safetensors of the ScalarModel, config.json with the backbone's
// config under "model", tokenizer.json.
struct LoadedRewardModel {
  std::shared_ptr<nn::ScalarModel> model;
  nn::Tokenizer tokenizer;
  nlohmann::json config;
};
LoadedRewardModel load_reward_model(const std::string &run_dir, Device device = Device::cpu());

// sft, data, eval_data, world, out, margin, normalize, eval_every, and the training keys.
std::vector<ConfigKey> reward_model_schema();

struct RewardModelResult {
  std::vector<double> losses, accuracies;  // every training step
  PairEval eval;                           // held-out pairs at the end
  double reward_mean = 0, reward_std = 1;  // of the training responses before normalisation
  std::string run_dir;
};

// Trains, logs TRL's loss / accuracy / margin, the held-out eval/loss, eval/accuracy and rm_accuracy,
// normalises the head so the training responses (SFT samples) score mean 0, std 1, and saves.
RewardModelResult run_reward_model(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
