// Policy evaluation with the oracle: seeded samples from the policy and the SFT reference on the
// same prompts, oracle reward, win rate, KL to the reference (k1 on the policy's samples), samples.
#include "rlhf/evaluation.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"
#include "rlhf/run_dir.h"
#include "rlhf/checkpoints.h"
#include "rlhf/verifier.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

namespace {

// max_new_tokens clamped so the longest prompt of the whole set still fits the context: the
// clamp must not depend on how prompts are chunked, or results would.
int64_t fitting_max_new(const nn::GPT &model, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                        int64_t max_new) {
  int64_t longest = 0;
  size_t which = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    int64_t n = (int64_t)tok.encode_prompt(prompts[i]).size();
    if (n > longest) longest = n, which = i;
  }
  NR_CHECK(longest < model.config.ctx, "prompt {} (\"{}\") is {} tokens with the chat template; the context ctx = {} "
           "leaves no room for a response", which + 1, prompts[which].substr(0, 60), longest, model.config.ctx);
  return std::min(max_new, model.config.ctx - longest);
}

std::vector<std::string> slice(const std::vector<std::string> &v, size_t begin, size_t end) {
  return std::vector<std::string>(v.begin() + (ptrdiff_t)begin, v.begin() + (ptrdiff_t)end);
}

std::vector<int64_t> row_lengths(const Tensor &response_mask) {
  Tensor n = response_mask.sum({1});
  std::vector<double> v = n.to_vector<double>();
  return std::vector<int64_t>(v.begin(), v.end());
}

}  // namespace

json by_kind(const EvalResult &r, const Oracle &oracle) {
  struct Acc { double n = 0, win = 0, tie = 0, score = 0, ref_score = 0, checked = 0, right = 0, ref_right = 0; };
  std::map<std::string, Acc> acc;
  for (const EvalRow &row : r.rows) {
    auto p = oracle.parse_prompt(row.prompt);
    Acc &a = acc[p ? kind_name(p->kind) : "unknown"];
    a.n += 1;
    a.win += row.score.total > row.ref_score.total;
    a.tie += row.score.total == row.ref_score.total;
    a.score += row.score.total, a.ref_score += row.ref_score.total;
    if (auto right = verifier_reward(row.prompt, row.response, row.finished)) {
      a.checked += 1, a.right += *right;
      a.ref_right += verifier_reward(row.prompt, row.ref_response, row.ref_finished).value_or(0.0);
    }
  }
  json out = json::object();
  for (const auto &[kind, a] : acc) {
    out[kind] = {{"prompts", (int64_t)a.n}, {"win_rate_vs_sft", (a.win + 0.5 * a.tie) / a.n}, {"ties", a.tie / a.n},
                 {"oracle_reward", a.score / a.n}, {"ref_oracle_reward", a.ref_score / a.n}};
    if (a.checked > 0) out[kind]["accuracy"] = a.right / a.checked, out[kind]["ref_accuracy"] = a.ref_right / a.checked;
  }
  return out;
}

// A prompt the policy always fails is one piece of evidence, not 25 (lecture 01, "Evaluation"):
//   \mathrm{SE}^2 = \frac{G}{G-1} \sum_{g=1}^{G} \Big(\sum_{i \in g} (x_i - \bar x)\Big)^2 / n^2
// the cluster-robust ("sandwich") variance of a mean; with one draw per cluster it is s/\sqrt{n}.
double clustered_standard_error(const std::vector<std::string> &cluster, const std::vector<double> &x) {
  NR_CHECK(cluster.size() == x.size(), "clustered_standard_error: {} cluster labels for {} values", cluster.size(),
           x.size());
  const double n = double(x.size());
  double mean = 0;
  for (double v : x) mean += v;
  mean /= n;
  std::map<std::string, double> dev;  // per cluster: the sum of deviations from the overall mean
  for (size_t i = 0; i < x.size(); ++i) dev[cluster[i]] += x[i] - mean;
  const double G = double(dev.size());
  if (G < 2) return std::nan("");  // one cluster: no spread to measure
  double ss = 0;
  for (const auto &[g, d] : dev) ss += d * d;
  return std::sqrt(G / (G - 1) * ss) / n;
}

SampledResponses sample_in_chunks(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                                  const nn::GenerationConfig &cfg, int64_t batch) {
  NR_CHECK(batch > 0, "sample_in_chunks: batch must be positive, got {}", batch);
  nn::GenerationConfig g = cfg;
  g.max_new_tokens = fitting_max_new(policy, tok, prompts, cfg.max_new_tokens);
  SampledResponses out;
  for (size_t i = 0, chunk = 0; i < prompts.size(); i += (size_t)batch, ++chunk) {
    g.seed = cfg.seed + chunk;
    Rollout r = sample_responses(policy, tok, slice(prompts, i, std::min(prompts.size(), i + (size_t)batch)), g);
    auto len = row_lengths(r.gen.response_mask);
    for (size_t b = 0; b < r.prompts.size(); ++b) {
      out.prompts.push_back(r.prompts[b]);
      out.responses.push_back(r.responses[b]);
      out.finished.push_back(r.gen.finished[b]);
      out.round_trips.push_back(r.round_trips[b]);
      out.lengths.push_back(len[b]);
    }
  }
  return out;
}

EvalResult evaluate(nn::GPT &policy, nn::GPT &ref, const nn::Tokenizer &tok, const Oracle &oracle,
                    const std::vector<std::string> &prompts, const EvalOptions &opts, const nn::ScalarModel *rm) {
  NR_CHECK(!prompts.empty(), "evaluate: no prompts");
  NR_CHECK(opts.batch > 0, "evaluate: batch must be positive, got {}", opts.batch);
  nn::GenerationConfig g{.max_new_tokens = opts.max_new_tokens, .temperature = opts.temperature};
  g.max_new_tokens = std::min(fitting_max_new(policy, tok, prompts, opts.max_new_tokens),
                              fitting_max_new(ref, tok, prompts, opts.max_new_tokens));
  const bool policy_was_training = policy.is_training(), ref_was_training = ref.is_training();
  policy.eval();
  ref.eval();
  NoGradGuard no_grad;

  EvalResult res;
  for (size_t i = 0, chunk = 0; i < prompts.size(); i += (size_t)opts.batch, ++chunk) {
    std::vector<std::string> part = slice(prompts, i, std::min(prompts.size(), i + (size_t)opts.batch));
    g.seed = opts.seed + chunk;  // the same seed for both models: a model against itself ties exactly
    Rollout pi = sample_responses(policy, tok, part, g);
    Rollout sft = sample_responses(ref, tok, part, g);
    // KL(pi || pi_ref) per prompt: the k1 estimator summed over the policy's response tokens
    // (response_logprobs is 0 after <|eos|>, so padding adds nothing).
    Tensor kl = kl_k1(response_logprobs(policy, pi.gen, opts.temperature),
                      response_logprobs(ref, pi.gen, opts.temperature)).sum({1});
    std::vector<double> klv = kl.to_vector<double>();
    std::vector<int64_t> len = row_lengths(pi.gen.response_mask);
    std::vector<double> rm_pi, rm_sft;  // the proxy, as the trainers score it: the sampled tokens, no penalty
    if (rm) {
      rm_pi = reward_scores(*rm, pi.gen).to_vector<double>();
      rm_sft = reward_scores(*rm, sft.gen).to_vector<double>();
    }
    for (size_t b = 0; b < part.size(); ++b) {
      EvalRow row;
      row.prompt = part[b];
      row.response = pi.responses[b];
      row.ref_response = sft.responses[b];
      row.finished = pi.gen.finished[b];
      row.ref_finished = sft.gen.finished[b];
      row.score = oracle.score(row.prompt, row.response, row.finished);
      row.ref_score = oracle.score(row.prompt, row.ref_response, row.ref_finished);
      row.kl = klv[b];
      row.length = len[b];
      if (rm) row.rm_score = rm_pi[b], row.ref_rm_score = rm_sft[b];
      res.rows.push_back(std::move(row));
    }
  }
  policy.train(policy_was_training);
  ref.train(ref_was_training);
  return summarize_rows(std::move(res.rows));
}

EvalResult summarize_rows(std::vector<EvalRow> rows) {
  EvalResult res;
  res.rows = std::move(rows);
  const bool has_rm = !res.rows.empty() && !std::isnan(res.rows[0].rm_score);  // evaluate() was given one
  if (has_rm) res.rm_score = res.ref_rm_score = 0;
  // Sums first, one division last: a tie of n prompts is exactly 0.5, whatever n.
  std::vector<std::string> row_prompts;
  std::vector<double> wins;
  for (const EvalRow &r : res.rows) {
    res.oracle_reward += r.score.total;
    res.ref_oracle_reward += r.ref_score.total;
    row_prompts.push_back(r.prompt);
    wins.push_back(r.score.total > r.ref_score.total ? 1.0 : r.score.total == r.ref_score.total ? 0.5 : 0.0);
    res.win_rate += wins.back();
    res.kl_to_ref += r.kl;
    res.response_length += double(r.length);
    res.finished += r.finished ? 1.0 : 0.0;
    res.helpful += r.score.helpful;
    res.honest += r.score.honest;
    res.harmless += r.score.harmless;
    if (auto acc = verifier_reward(r.prompt, r.response, r.finished)) {
      res.verifiable += 1;
      res.accuracy += *acc;
      res.ref_accuracy += verifier_reward(r.prompt, r.ref_response, r.ref_finished).value_or(0.0);
    }
    if (has_rm) res.rm_score += r.rm_score, res.ref_rm_score += r.ref_rm_score;
  }
  if (res.verifiable > 0) res.accuracy /= double(res.verifiable), res.ref_accuracy /= double(res.verifiable);
  const double n = double(res.rows.size());
  for (double *v : {&res.oracle_reward, &res.ref_oracle_reward, &res.win_rate, &res.kl_to_ref, &res.response_length,
                    &res.finished, &res.helpful, &res.honest, &res.harmless, &res.rm_score, &res.ref_rm_score})
    *v /= n;
  res.win_rate_se = res.rows.empty() ? 0.0 : clustered_standard_error(row_prompts, wins);
  return res;
}


double mean_of(const std::vector<double> &x) {
  double m = 0;
  for (double v : x) m += v / double(x.size());
  return x.empty() ? std::nan("") : m;
}

double standard_error_of(const std::vector<double> &x) {
  if (x.size() < 2) return std::nan("");
  const double m = mean_of(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / double(x.size() - 1) / double(x.size()));
}

std::map<std::string, double> eval_metrics(const EvalResult &r) {
  std::map<std::string, double> m = {
      {"eval/oracle_reward", r.oracle_reward}, {"eval/ref_oracle_reward", r.ref_oracle_reward},
      {"eval/win_rate_vs_sft", r.win_rate},    {"eval/win_rate_se", r.win_rate_se},
      {"eval/kl_to_ref", r.kl_to_ref},         {"eval/response_length", r.response_length},
      {"eval/finished", r.finished},           {"eval/helpful", r.helpful},
      {"eval/honest", r.honest},               {"eval/harmless", r.harmless}};
  if (r.verifiable > 0) m["eval/accuracy"] = r.accuracy, m["eval/ref_accuracy"] = r.ref_accuracy;
  if (!std::isnan(r.rm_score)) m["eval/rm_score"] = r.rm_score, m["eval/ref_rm_score"] = r.ref_rm_score;
  return m;
}

std::string side_by_side(const EvalResult &r, int64_t n) {
  std::string s;
  for (int64_t i = 0; i < std::min<int64_t>(n, (int64_t)r.rows.size()); ++i) {
    const EvalRow &row = r.rows[(size_t)i];
    auto resp = [](const std::string &text, bool finished) { return text + (finished ? "" : " [no <|eos|>]"); };
    s += fmt::format("[{}] user:   {}\n    policy: {}\n            oracle {:+.2f} ({})  kl {:+.2f}\n    sft:    {}\n"
                     "            oracle {:+.2f} ({})\n\n",
                     i + 1, row.prompt, resp(row.response, row.finished), row.score.total, row.score.reason, row.kl,
                     resp(row.ref_response, row.ref_finished), row.ref_score.total, row.ref_score.reason);
  }
  return s;
}

const OptionTable<EvalConfig> &eval_options() {
  using O = EvalConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("policy", &O::policy, "run directory of the policy to evaluate")
        .add("ref", &O::ref, "run directory of the SFT reference (win rate and KL are against it)")
        .add("prompts", &O::prompts, "held-out prompts: JSONL of {\"prompt\": ...}")
        .add("world", &O::world, "world folder (world.json) whose oracle scores the responses")
        .add("out", &O::out, "run directory for metrics.jsonl, eval.json, samples.txt")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("n_prompts", &O::n_prompts, "evaluate the first N prompts; 0 = all", Range::at_least(0))
        .add("max_new_tokens", [](O &o) -> auto & { return o.eval.max_new_tokens; }, "max response tokens",
             Range::at_least(1))
        .add("temperature", [](O &o) -> auto & { return o.eval.temperature; },
             "sampling temperature; log-probs for the KL use the same", Range::above(0))
        .add("seed", [](O &o) -> auto & { return o.eval.seed; }, "sampling seed (the same for policy and reference)",
             Range::at_least(0))
        .add("batch", [](O &o) -> auto & { return o.eval.batch; }, "prompts per generate call", Range::at_least(1))
        .add("samples", &O::samples, "side-by-side samples written to samples.txt", Range::at_least(0))
        .add("device", &O::device, "cpu, cuda or cuda:N");
    return t;
  }();
  return t;
}

EvalResult run_evaluate(const EvalConfig &cfg) {
  const Device dev = Device::parse(cfg.device);
  LoadedModel policy = load_run<nn::GPT>(cfg.policy, dev);
  LoadedModel ref = load_run<nn::GPT>(cfg.ref, dev);
  NR_CHECK(policy.tokenizer == ref.tokenizer,
           "the policy '{}' and the reference '{}' use different tokenizers", cfg.policy, cfg.ref);
  NR_CHECK(policy.model->config.vocab == ref.model->config.vocab,
           "the policy '{}' (vocab {}) and the reference '{}' (vocab {}) have different vocabularies", cfg.policy,
           policy.model->config.vocab, cfg.ref, ref.model->config.vocab);
  Oracle oracle = Oracle::from_world_dir(cfg.world);
  std::vector<std::string> prompts;
  for (auto &p : read_prompts_jsonl(cfg.prompts)) prompts.push_back(std::move(p.prompt));
  NR_CHECK(!prompts.empty(), "{}: no prompts", cfg.prompts);
  if (cfg.n_prompts > 0 && (size_t)cfg.n_prompts < prompts.size()) prompts.resize((size_t)cfg.n_prompts);
  EvalResult r = evaluate(*policy.model, *ref.model, policy.tokenizer, oracle, prompts, cfg.eval);

  RunDir run(cfg.out, cfg.overwrite);
  run.write_config(eval_options().resolved(cfg));
  json m = {{"step", 0}, {"eval/prompts", (int64_t)r.rows.size()}};
  for (const auto &[k, v] : eval_metrics(r)) m[k] = v;
  run.log_metrics(m);
  json summary = m;
  summary.erase("step");
  summary["policy"] = cfg.policy;
  summary["ref"] = cfg.ref;
  summary["by_kind"] = by_kind(r, oracle);
  run.write_text("eval.json", summary.dump(2) + "\n");
  run.write_text("samples.txt", side_by_side(r, cfg.samples));
  std::string rows;
  for (const EvalRow &row : r.rows) {
    auto p = oracle.parse_prompt(row.prompt);
    rows += json{{"prompt", row.prompt}, {"kind", p ? kind_name(p->kind) : "unknown"},
                 {"response", row.response}, {"finished", row.finished}, {"score", row.score.total},
                 {"reason", row.score.reason}, {"ref_response", row.ref_response}, {"ref_finished", row.ref_finished},
                 {"ref_score", row.ref_score.total}, {"ref_reason", row.ref_score.reason}, {"kl", row.kl}}
                .dump(-1, ' ', false, json::error_handler_t::replace) + "\n";  // samples may cut a UTF-8 character
  }
  run.write_text("rows.jsonl", rows);
  run.commit();
  return r;
}

}  // namespace nanorlhf::rlhf
