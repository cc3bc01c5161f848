// Direct preference optimisation and kin on (prompt, chosen, rejected) pairs (lecture: "DPO" and
// "Further reading"): DPO (sigmoid), cDPO (label smoothing), IPO, SLiC-HF hinge, SimPO (no reference).
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/config.h"
#include "rlhf/data.h"
#include "rlhf/trainers/pretrain.h"
#include "rlhf/trainers/reinforce.h"

namespace nanorlhf::rlhf {

// A preference pair as tokens: the chat-templated prompt, then each completion and its <|eos|>.
struct TokenizedPair {
  std::vector<int64_t> prompt, chosen, rejected;  // chosen/rejected: completion tokens only
  std::string source;                             // "path:line"
};
// Throws naming the record's source when prompt + completion does not fit max_len (the model's ctx).
std::vector<TokenizedPair> tokenize_preferences(const nn::Tokenizer &tok, const std::vector<PreferenceExample> &ex,
                                                int64_t max_len);
// Reads a preference JSONL with rlhf/trainers/reward_model.h's reader (file:line errors; a response
// marked "chosen_finished"/"rejected_finished": false keeps no <|eos|>), split at the prompt.
std::vector<TokenizedPair> read_tokenized_pairs(const std::string &path, const nn::Tokenizer &tok, int64_t ctx);

struct DPOOptions {
  std::string loss_type = "sigmoid";  // sigmoid (DPO) | ipo | hinge (SLiC-HF) | simpo
  double beta = 0.1;                  // DPO / IPO tau / hinge
  double label_smoothing = 0.0;       // cDPO epsilon (sigmoid only)
  double simpo_beta = 2.0, simpo_gamma = 0.5;  // princeton-nlp/SimPO defaults (gamma/beta = 0.25)
  double rpo_alpha = 0.0;             // weight of RPO's chosen-answer NLL added to the loss; 0 = off
  int64_t batch_size = 16;            // pairs per gradient step
  OptimConfig optim;
};
// The valid loss types, for errors and help.
const std::vector<std::string> &dpo_loss_types();

// log pi(y|x) summed over the completion tokens of each pair: chosen rows first. [2b]; lengths [2b].
Tensor pair_logprobs(const nn::GPT &model, const std::vector<TokenizedPair> &pairs, const std::vector<size_t> &idx,
                     int64_t pad_id, Tensor *lengths = nullptr);

// One DPO run's state: the policy, the pairs, their reference log-probs (computed once, up front,
// without a graph) and the optimiser. ref may be null for simpo, which needs none.
class DPOTrainer {
 public:
  DPOTrainer(nn::GPT &policy, const nn::GPT *ref, std::vector<TokenizedPair> pairs, int64_t pad_id, DPOOptions opts);
  // One gradient step on pairs idx; TRL's metrics: loss, rewards/{chosen,rejected,accuracies,margins},
  // logps/{chosen,rejected}.
  Metrics step(const std::vector<size_t> &idx);
  // The same metrics without an update (no graph).
  Metrics evaluate(const std::vector<size_t> &idx);
  size_t size() const { return pairs_.size(); }
  int64_t steps_done() const { return step_; }

 private:
  Metrics compute(const std::vector<size_t> &idx, bool train);
  nn::GPT &policy_;
  std::vector<TokenizedPair> pairs_;
  int64_t pad_id_;
  DPOOptions o_;
  Optimization opt_;
  std::vector<double> ref_chosen_, ref_rejected_;  // log pi_ref(y_w|x), log pi_ref(y_l|x) per pair
  int64_t step_ = 0;
};

std::vector<ConfigKey> dpo_schema();
// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_dpo(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
