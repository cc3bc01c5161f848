// Direct preference optimisation and kin on (prompt, chosen, rejected) pairs (lecture: "DPO" and
// "Further reading"): DPO (sigmoid), cDPO (label smoothing), IPO, SLiC-HF hinge, SimPO (no reference).
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "rlhf/data.h"
#include "rlhf/options.h"
#include "rlhf/policy_run.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

struct DPOConfig {
  std::string data = "runs/preferences/train.jsonl";
  std::string ref;                    // the frozen reference's run directory; empty = the initial policy
  std::string loss_type = "sigmoid";  // sigmoid (DPO) | ipo | hinge (SLiC-HF) | simpo
  double beta = 0.1;                  // DPO / IPO tau / hinge
  double label_smoothing = 0.0;       // cDPO epsilon (sigmoid only)
  double simpo_beta = 2.0, simpo_gamma = 0.5;  // princeton-nlp/SimPO defaults (gamma/beta = 0.25)
  double rpo_alpha = 0.0;             // weight of RPO's chosen-answer NLL added to the loss; 0 = off
  int64_t epochs = 2;                 // passes over the pairs when loop.steps = 0
  PolicyRunOptions run{.reward_model = "", .prompts = "", .out = "runs/dpo"};
  uint64_t seed = 1;
  int64_t batch_size = 16;            // pairs per gradient step
  std::string device = "cpu";
  LoopOptions loop{.steps = 0, .log_every = 5};  // steps 0 = `epochs` passes over the pairs
  optim::OptimConfig optim = policy_optim(3e-5);
  void validate() const;
};
const OptionTable<DPOConfig> &dpo_options();
// The valid loss types, for errors and help.
const std::vector<std::string> &dpo_loss_types();

// log pi(y|x) summed over the completion tokens of each pair: chosen rows first. [2b]; lengths [2b].
Tensor pair_logprobs(const nn::GPT &model, const std::vector<PreferencePair> &pairs, const std::vector<size_t> &idx,
                     int64_t pad_id, Tensor *lengths = nullptr);

// One DPO run's state: the policy, the pairs, their reference log-probs (computed once, up front,
// without a graph) and the optimiser. ref may be null for simpo, which needs none.
class DPOTrainer {
 public:
  DPOTrainer(nn::GPT &policy, const nn::GPT *ref, std::vector<PreferencePair> pairs, int64_t pad_id, DPOConfig opts);
  // One gradient step on pairs idx; TRL's metrics: loss, rewards/{chosen,rejected,accuracies,margins},
  // logps/{chosen,rejected}.
  Metrics step(const std::vector<size_t> &idx);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  // The same metrics without an update (no graph).
  Metrics evaluate(const std::vector<size_t> &idx);
  size_t size() const { return pairs_.size(); }
  int64_t steps_per_epoch() const;
  int64_t total_steps() const { return total_steps_; }  // loop.steps, or epochs x steps_per_epoch
  int64_t steps_done() const { return step_; }

 private:
  // The metrics of pairs idx; with weight > 0 also the backward of weight x loss.
  Metrics compute(const std::vector<size_t> &idx, double weight);
  nn::GPT &policy_;
  std::vector<PreferencePair> pairs_;
  int64_t pad_id_;
  DPOConfig o_;
  int64_t total_steps_;
  optim::Optimization opt_;
  std::vector<double> ref_chosen_, ref_rejected_;  // log pi_ref(y_w|x), log pi_ref(y_l|x) per pair
  int64_t step_ = 0;
};

// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_dpo(const DPOConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
