// KTO (Ethayarajh et al. 2024; lecture: "KTO") on unpaired thumbs-up / thumbs-down examples, TRL's
// {"prompt", "completion", "label"}, or on preference pairs unpaired (chosen desirable, rejected not).
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

struct KTOConfig {
  std::string data = "runs/preferences/train.jsonl";  // unpaired examples or preference pairs
  std::string ref;                   // the frozen reference's run directory; empty = the initial policy
  std::string unpaired_out;          // also write the examples read as TRL's unpaired JSONL here; empty = no
  double beta = 0.1;                 // TRL KTOConfig defaults
  double desirable_weight = 1.0, undesirable_weight = 1.0;
  int64_t epochs = 2;                // passes over the examples when loop.steps = 0
  PolicyRunOptions run{.reward_model = "", .prompts = "", .out = "runs/kto"};
  uint64_t seed = 1;
  int64_t batch_size = 32;           // examples per step: DPO's 16 pairs unpaired
  std::string device = "cpu";
  LoopOptions loop{.steps = 0, .log_every = 5};  // steps 0 = `epochs` passes over the examples
  optim::OptimConfig optim = policy_optim(3e-5);  // DPO's lr
};
const OptionTable<KTOConfig> &kto_options();

// TRL's check of the class balance (KTO paper eq. 8): a warning, empty when
// desirable_weight * n_desirable / (undesirable_weight * n_undesirable) is in [1, 4/3].
std::string kto_weight_warning(int64_t n_desirable, int64_t n_undesirable, double desirable_weight,
                               double undesirable_weight);

// log pi(y|x) summed over the completion tokens of rows (the prompt of examples[prompt_of[j]], the
// completion of examples[completion_of[j]]), right-padded; a completion that would overrun the
// context is cut to fit (only mismatched rows can: matched ones were checked when tokenised). [rows]
Tensor unpaired_logprobs(const nn::GPT &model, const std::vector<UnpairedExample> &examples,
                         const std::vector<size_t> &prompt_of, const std::vector<size_t> &completion_of,
                         int64_t pad_id);
// TRL's mismatched pairs: row j of a batch takes the completion of row j - 1 (cyclically), i.e.
// completion i meets the prompt of example (i + 1) mod B.
std::vector<size_t> kl_completions(const std::vector<size_t> &idx);

// One KTO run's state: the policy, the examples, their reference log-probs (computed once, up front,
// without a graph) and the optimiser. The mismatched pairs change with each batch, so their policy
// and reference log-probs are computed per batch, without a graph (z0 is detached anyway).
class KTOTrainer {
 public:
  KTOTrainer(nn::GPT &policy, const nn::GPT &ref, std::vector<UnpairedExample> examples, int64_t pad_id,
             KTOConfig opts);
  // One gradient step on examples idx (at least 2); TRL's metrics: loss, kl, rewards/{chosen,rejected,
  // margins}, logps/{chosen,rejected}, count/{chosen,rejected}. A side absent from the batch logs
  // no rewards/logps of its own (as TRL).
  Metrics step(const std::vector<size_t> &idx);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  // The same metrics without an update (no graph).
  Metrics evaluate(const std::vector<size_t> &idx);
  size_t size() const { return examples_.size(); }
  int64_t steps_per_epoch() const;
  int64_t total_steps() const { return total_steps_; }  // loop.steps, or epochs x steps_per_epoch
  int64_t steps_done() const { return step_; }
  const std::string &weight_warning() const { return warning_; }  // kto_weight_warning of the whole data

 private:
  Tensor reference_point(const std::vector<size_t> &idx);
  // The metrics of examples idx around z0; with weight > 0 also the backward of weight x loss.
  Metrics compute(const std::vector<size_t> &idx, const Tensor &z0, double weight);
  nn::GPT &policy_;
  const nn::GPT &ref_;
  std::vector<UnpairedExample> examples_;
  int64_t pad_id_;
  KTOConfig o_;
  int64_t total_steps_;
  optim::Optimization opt_;
  std::vector<double> ref_logps_;  // log pi_ref(y|x) per example
  std::string warning_;
  int64_t step_ = 0;
};

// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_kto(const KTOConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
