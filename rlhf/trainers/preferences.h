// Preference data (lecture: "Preference data"; InstructGPT): K sampled responses per prompt from the
// SFT policy, pairs labelled by the oracle "human" with Bradley-Terry noise, written as TRL JSONL.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/config.h"

namespace nanorlhf::rlhf {

// policy, prompts, world, out, k, mix_policy, mix_k, pairs_per_prompt, heldout_fraction, max_prompts, max_new_tokens,
// temperature, label_temperature, seed, batch, device.
std::vector<ConfigKey> preferences_schema();

struct PreferencesResult {
  int64_t train_pairs = 0, heldout_pairs = 0;
  int64_t identical_skipped = 0;  // pairs whose two responses had the same text
  double label_agreement = 0;     // noisy labels that agree with the noiseless oracle (pairs with different scores)
  double mean_oracle_score = 0;   // of every sampled response
  std::string train_path, heldout_path;
};

// Writes out/train.jsonl and out/heldout.jsonl (the held-out prompts' pairs, for the reward model's
// evaluation), plus config.json and metrics.jsonl. Records are {"prompt","chosen","rejected"} with
// "chosen_finished"/"rejected_finished" (false: the response was cut at max_new_tokens without
// <|eos|>; extra fields TRL readers ignore).
PreferencesResult run_preferences(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
