// Shared by every trainer that samples: rollouts from a policy (each prompt k times, scored, the
// missing-EOS penalty applied), log-probs of the responses under any model (policy, frozen
// reference), reward-model scores, and oracle scores for evaluation.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "nn/generation.h"
#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/oracle.h"

namespace nanorlhf::rlhf {

struct Rollout {
  std::vector<std::string> prompts;    // the user turns
  nn::GenerationOutput gen;            // sequences [B, P+N], masks, sampled log-probs [B, N]
  std::vector<std::string> responses;  // decoded response text, special tokens removed
  std::vector<bool> round_trips;       // written to JSON and re-encoded, the text gives the sampled tokens
  Tensor scores;                       // [B] r(x, y) minus the missing-EOS penalty (set by rollout())
  std::map<std::string, double> reward_metrics;  // rewards/<name>/mean and /std of each named reward
};

// r(x, y) for each response of a rollout: [B]. The training reward is the learned reward model, the
// verifier, or a toy reward built in a test; never the oracle, which only evaluates.
using RewardFn = std::function<Tensor(const Rollout &)>;
// The reward model's scores, without a graph.
RewardFn reward_model_fn(const nn::ScalarModel &rm);

// The training reward as TRL's reward_funcs / reward_weights: a weighted sum of reward functions,
//   r(x, y) = \sum_i w_i\, r_i(x, y)
// A single function converts implicitly (weight 1, unnamed: it logs no rewards/<name>/* metrics).
struct RewardTerm {
  std::string name;
  double weight = 1.0;
  RewardFn fn;
};
class Rewards {
 public:
  template <class F>
    requires std::is_invocable_r_v<Tensor, F, const Rollout &>
  Rewards(F f) : terms_{{"", 1.0, RewardFn(std::move(f))}} {}
  explicit Rewards(std::vector<RewardTerm> terms);
  // [B]; each named term's rewards/<name>/mean and rewards/<name>/std (unweighted) into *metrics.
  Tensor operator()(const Rollout &r, std::map<std::string, double> *metrics = nullptr) const;
  const std::vector<RewardTerm> &terms() const { return terms_; }

 private:
  std::vector<RewardTerm> terms_;
};

// How every sampling trainer rolls out and scores. The same temperature is used for sampling and
// for every log-prob (N implementation details); no top-k / top-p, so the sampling distribution
// is the one the log-probs measure.
struct SamplingOptions {
  int64_t max_new_tokens = 24;
  double temperature = 1.0;
  double missing_eos_penalty = 1.0;  // subtracted from the score of a response with no <|eos|>
};

// One rollout of a sampling trainer: each prompt k times in consecutive rows (RLOO, RAFT and
// online DPO group them), sampled from `policy` with `seed`, scored by `reward`, and a response
// that never ended pays the missing-EOS penalty. [B = |prompts| k]
Rollout rollout(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts, int64_t k,
                const SamplingOptions &o, uint64_t seed, const Rewards &reward);

// Response tokens sampled by sample_responses in this process so far (`nanorlhf compare` reports
// each method's training cost in them).
int64_t sampled_tokens();

// Prompts are rendered with the chat template (<|bos|><|user|>prompt<|assistant|>) and sampled.
Rollout sample_responses(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                         const nn::GenerationConfig &cfg);

// Whether `text`, the decoding of sampled response tokens `ids` (<|eos|> last if it finished), comes
// back as `ids` when written to JSON, read and encoded again. Byte-level BPE can sample what text
// cannot give back: part of a multi-byte UTF-8 character (JSON holds U+FFFD instead), a special token
// mid-way (decode drops it) or a split of a word that is not BPE's own.
bool round_trips(const nn::Tokenizer &tok, std::vector<int64_t> ids, const std::string &text);

// log pi(y_t | x, y_<t) of the response tokens of a rollout under `model` (logits / temperature):
// [B, N], 0 where response_mask is 0. Differentiable when grad mode is on. If `logits_out` is
// given it receives the response-position logits [B, N, V] (for entropy).
Tensor response_logprobs(const nn::GPT &model, const nn::GenerationOutput &gen, double temperature,
                         Tensor *logits_out = nullptr);

// val/eos_frac (share of responses that ended with <|eos|>) and val/response_len (mean response
// tokens) of a rollout, TRL's names, and its reward_metrics.
std::map<std::string, double> rollout_metrics(const Rollout &r);

// The rows `idx` of a rollout (same P and N): a minibatch, or the kept best of K.
nn::GenerationOutput select_rows(const nn::GenerationOutput &gen, const std::vector<int64_t> &idx);

// Data parallelism for the no-graph passes over a rollout (reference and old log-probs, values):
// f of this rank's consecutive share of gen's rows, gathered from every rank, so each rank holds
// the [B, N] that f(gen) gives (f must return float [rows, N]). One process: f(gen).
Tensor on_shards(const nn::GenerationOutput &gen, const std::function<Tensor(const nn::GenerationOutput &)> &f);

// Reward-model scores r(x, y) of the rollout's full sequences: [B] (read at the last real token).
Tensor reward_scores(const nn::ScalarModel &rm, const nn::GenerationOutput &gen);

// The oracle's HHH totals of the rollout (evaluation only; never a training signal).
std::vector<double> oracle_scores(const Oracle &oracle, const Rollout &r);

}  // namespace nanorlhf::rlhf
