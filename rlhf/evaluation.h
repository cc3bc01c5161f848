// Evaluation of a policy against the SFT reference on held-out prompts with the oracle: mean oracle
// reward, win rate vs SFT, KL to the reference, response length, and side-by-side samples.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/options.h"
#include "rlhf/oracle.h"
#include "rlhf/rollout.h"

namespace nanorlhf::rlhf {

// One response per prompt, sampled `batch` prompts per generate call; chunk i is seeded with
// cfg.seed + i, so the same prompts, model and seed give the same responses whatever else runs.
struct SampledResponses {
  std::vector<std::string> prompts, responses;
  std::vector<bool> finished;     // ended with <|eos|>
  std::vector<bool> round_trips;  // re-read from JSON, the text encodes to the sampled tokens
  std::vector<int64_t> lengths;   // response tokens (incl. <|eos|>)
};
SampledResponses sample_in_chunks(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                                  const nn::GenerationConfig &cfg, int64_t batch);

struct EvalRow {
  std::string prompt, response, ref_response;
  bool finished = false, ref_finished = false;
  HHHScore score, ref_score;  // oracle scores of the two responses
  double kl = 0;              // sum_t log pi(y_t) - log pi_ref(y_t) on the policy's response (k1)
  double rm_score = NAN, ref_rm_score = NAN;  // the reward model's scores of the two; NaN without one
  int64_t length = 0;         // response tokens (incl. <|eos|>)
};

struct EvalResult {
  double oracle_reward = 0;      // eval/oracle_reward: mean oracle total of the policy's responses
  double ref_oracle_reward = 0;  // eval/ref_oracle_reward: the same for the reference
  double win_rate = 0;           // eval/win_rate_vs_sft: oracle prefers the policy's response; ties count 1/2
  double win_rate_se = 0;        // eval/win_rate_se: its standard error, draws of one prompt as one cluster
  double kl_to_ref = 0;          // eval/kl_to_ref: mean over prompts of the summed k1 estimator
  double response_length = 0;    // eval/response_length: mean response tokens
  double finished = 0;           // eval/finished: share of responses that ended with <|eos|>
  double helpful = 0, honest = 0, harmless = 0;  // eval/helpful, ...: means of the oracle's criteria
  // The verifier on the prompts it can check (count, repeat, arithmetic): eval/accuracy is the share
  // the policy answers right, eval/ref_accuracy the reference's; both only when verifiable > 0.
  int64_t verifiable = 0;
  double accuracy = 0, ref_accuracy = 0;
  // eval/rm_score, eval/ref_rm_score: the reward model's mean score of the same responses (the proxy
  // next to the oracle's gold, to see reward hacking); NaN when evaluate() was given no reward model.
  double rm_score = NAN, ref_rm_score = NAN;
  std::vector<EvalRow> rows;
};

struct EvalOptions {
  int64_t max_new_tokens = 48;
  double temperature = 1.0;  // sampling and log-prob temperature (the KL is that of the tempered models)
  uint64_t seed = 1;
  int64_t batch = 50;        // prompts per generate call
};

// Samples from `policy` and `ref` with the same seeds, scores both with the oracle (noiseless) and
// estimates KL(pi || pi_ref) on the policy's own samples, and when `rm` is given scores both with it.
// Deterministic in (models, prompts, options).
EvalResult evaluate(nn::GPT &policy, nn::GPT &ref, const nn::Tokenizer &tok, const Oracle &oracle,
                    const std::vector<std::string> &prompts, const EvalOptions &opts,
                    const nn::ScalarModel *rm = nullptr);

// The aggregates of EvalResult (means, win rate and its clustered s.e., accuracy) from its rows:
// what evaluate() returns, also for rows put together elsewhere (best-of-n in `nanorlhf compare`).
EvalResult summarize_rows(std::vector<EvalRow> rows);

// Mean, and standard error of the mean (sample sd / sqrt(n); NaN for fewer than 2 values): the
// spread of a measure over seeds.
double mean_of(const std::vector<double> &x);
double standard_error_of(const std::vector<double> &x);

// Standard error of the mean of x whose draws come in clusters (cluster[i] names x[i]'s): the
// win rate's, with the draws of one held-out prompt as one cluster. NaN for a single cluster.
double clustered_standard_error(const std::vector<std::string> &cluster, const std::vector<double> &x);

// The result as TRL-style eval/ metrics: eval/oracle_reward, eval/ref_oracle_reward,
// eval/win_rate_vs_sft, eval/win_rate_se, eval/kl_to_ref, eval/response_length, eval/finished,
// eval/helpful, eval/honest, eval/harmless, eval/accuracy and eval/ref_accuracy when some prompts are
// verifiable, eval/rm_score and eval/ref_rm_score when they were measured.
std::map<std::string, double> eval_metrics(const EvalResult &r);

// Side-by-side text of the first n rows: prompt, policy response and score, reference response and score.
std::string side_by_side(const EvalResult &r, int64_t n);

// Win rate, tie share and mean oracle scores per prompt kind (the oracle's parse of each prompt):
// where alignment helps and where the policy only ties SFT.
nlohmann::json by_kind(const EvalResult &r, const Oracle &oracle);

// `nanorlhf eval`: a policy against the SFT reference on held-out prompts.
struct EvalConfig {
  std::string policy = "runs/ppo";
  std::string ref = "runs/sft";  // win rate and KL are against it
  std::string prompts = "data/eval_prompts.jsonl";
  std::string world = "data";    // whose oracle scores the responses
  std::string out = "runs/eval";
  bool overwrite = false;
  int64_t n_prompts = 0;         // the first N prompts; 0 = all
  EvalOptions eval;
  int64_t samples = 10;          // side-by-side samples in samples.txt
  std::string device = "cpu";
};
const OptionTable<EvalConfig> &eval_options();

// Loads both run directories, evaluates, writes config.json, metrics.jsonl (one record, TRL-style
// eval/ names), eval.json (with the per-kind table), samples.txt and rows.jsonl (every prompt,
// both responses, their scores and reasons) to `out`.
EvalResult run_evaluate(const EvalConfig &cfg);

}  // namespace nanorlhf::rlhf
