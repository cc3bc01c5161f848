// Preference data (lecture: "Preference data"; InstructGPT): K sampled responses per prompt from the
// SFT policy, pairs labelled by the oracle "human" with Bradley-Terry noise, written as TRL JSONL.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/options.h"
#include "rlhf/oracle.h"

namespace nanorlhf::rlhf {

struct PreferencesConfig {
  std::string policy = "runs/sft";  // the policy that writes the responses (the SFT model)
  std::string prompts = "data/prompts.jsonl";
  std::string world = "data";       // the oracle that labels the pairs
  std::string out = "runs/preferences";
  bool overwrite = false;
  int64_t k = 4;                    // responses sampled per prompt
  std::string mix_policy;           // a second policy that writes mix_k of the K responses; empty = none
  int64_t mix_k = 0;
  int64_t pairs_per_prompt = 0;     // drawn from the K(K-1)/2; 0 = all
  double heldout_fraction = 0.1;
  int64_t max_prompts = 0;          // 0 = all
  int64_t max_new_tokens = 48;      // a response cut there is unfinished
  double temperature = 1.0;
  double label_temperature = Oracle::kDefaultTemperature;  // Bradley-Terry noise of the annotator
  uint64_t seed = 1;
  int64_t batch = 64;               // responses per generate call
  std::string device = "cpu";
  void validate() const;
};
const OptionTable<PreferencesConfig> &preferences_options();

struct PreferencesResult {
  int64_t train_pairs = 0, heldout_pairs = 0;
  int64_t identical_skipped = 0;  // pairs whose two responses had the same text
  int64_t dropped_not_round_trip = 0;  // pairs with a response whose text does not re-encode to its tokens
  double label_agreement = 0;     // noisy labels that agree with the noiseless oracle (pairs with different scores)
  double mean_oracle_score = 0;   // of every sampled response
  std::string train_path, heldout_path;
};

// Writes out/train.jsonl and out/heldout.jsonl (the held-out prompts' pairs, for the reward model's
// evaluation), plus config.json and metrics.jsonl. Records are {"prompt","chosen","rejected"} with
// "chosen_finished"/"rejected_finished" (false: the response was cut at max_new_tokens without
// <|eos|>; extra fields TRL readers ignore). A pair is dropped, and counted, when a response's text
// would not re-encode to the tokens that were sampled (rlhf::round_trips).
PreferencesResult run_preferences(const PreferencesConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
