// Rollouts: chat-templated prompts sampled from a policy, log-probs of the sampled responses under
// any model, reward-model scores and oracle scores. Shared by every trainer that samples.
#include "rlhf/rollout.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include <nlohmann/json.hpp>

#include "nanorlhf/nanorlhf.h"
#include "nn/distributed.h"
#include "nn/losses.h"
#include "rlhf/batching.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

RewardFn reward_model_fn(const nn::ScalarModel &rm) {
  return [&rm](const Rollout &r) {
    NoGradGuard ng;
    return reward_scores(rm, r.gen);
  };
}

Rewards::Rewards(std::vector<RewardTerm> terms) : terms_(std::move(terms)) {
  NR_CHECK(!terms_.empty(), "Rewards: no reward function");
}

Tensor Rewards::operator()(const Rollout &r, std::map<std::string, double> *metrics) const {
  Tensor total;
  for (const RewardTerm &t : terms_) {
    Tensor s = t.fn(r).detach();
    if (metrics && !t.name.empty()) {  // TRL's rewards/<name>/mean and /std (unbiased, as torch.std)
      std::vector<double> v = s.to_vector<double>();
      double mean = 0, ss = 0;
      for (double x : v) mean += x / double(v.size());
      for (double x : v) ss += (x - mean) * (x - mean);
      (*metrics)["rewards/" + t.name + "/mean"] = mean;
      (*metrics)["rewards/" + t.name + "/std"] = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0.0;
    }
    Tensor w = terms_.size() == 1 && t.weight == 1.0 ? s : s * t.weight;
    total = total.defined() ? total + w : w;
  }
  return total;
}

Rollout rollout(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts, int64_t k,
                const SamplingOptions &o, uint64_t seed, const Rewards &reward) {
  NR_CHECK(k >= 1, "rollout: k must be >= 1, got {}", k);
  NR_CHECK(o.temperature > 0, "rollout: temperature must be > 0, got {}", o.temperature);
  std::vector<std::string> batch;
  for (const auto &p : prompts)
    for (int64_t j = 0; j < k; ++j) batch.push_back(p);
  nn::GenerationConfig g;
  g.max_new_tokens = o.max_new_tokens;
  g.temperature = o.temperature;
  g.seed = seed;
  Rollout r = sample_responses(policy, tok, batch, g);
  r.scores = apply_missing_eos_penalty(reward(r, &r.reward_metrics), r.gen.finished, o.missing_eos_penalty);
  return r;
}

std::map<std::string, double> rollout_metrics(const Rollout &r) {
  const double B = (double)r.gen.finished.size();
  std::map<std::string, double> m = r.reward_metrics;
  m["val/eos_frac"] = (double)std::count(r.gen.finished.begin(), r.gen.finished.end(), true) / B;
  m["val/response_len"] = r.gen.response_mask.sum().item() / B;
  return m;
}

namespace {
// x[idx] along dim 0 (constants only: no graph). index_select wants float rows, so token ids are
// gathered on the host; the batches are small.
Tensor rows(const Tensor &x, const Tensor &idx) {
  if (x.dtype() != kInt64) return index_select(x, 0, idx);
  const int64_t W = x.numel() / x.shape()[0];
  std::vector<int64_t> v = x.cpu().contiguous().to_vector<int64_t>(), out;
  for (int64_t r : idx.cpu().to_vector<int64_t>()) out.insert(out.end(), v.begin() + r * W, v.begin() + (r + 1) * W);
  Shape s = x.shape();
  s[0] = idx.numel();
  return from_vector<int64_t>(out, s).to(x.device());
}
}  // namespace

nn::GenerationOutput select_rows(const nn::GenerationOutput &gen, const std::vector<int64_t> &idx) {
  Tensor i = from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(gen.sequences.device());
  nn::GenerationOutput s;
  s.sequences = rows(gen.sequences, i);
  s.attention_mask = rows(gen.attention_mask, i);
  s.response_ids = rows(gen.response_ids, i);
  s.response_mask = rows(gen.response_mask, i);
  s.response_logprobs = rows(gen.response_logprobs, i);
  for (int64_t r : idx) s.finished.push_back(gen.finished[r]);
  s.prompt_len = gen.prompt_len;
  return s;
}

Tensor on_shards(const nn::GenerationOutput &gen, const std::function<Tensor(const nn::GenerationOutput &)> &f) {
  if (dist::world_size() == 1) return f(gen);
  NoGradGuard ng;
  const int64_t B = gen.sequences.shape()[0], N = gen.response_ids.shape()[1];
  std::vector<size_t> mine = part_of(index_range(0, (size_t)B), dist::world_size(), dist::rank());
  std::vector<float> local;
  Tensor like;
  if (!mine.empty()) {
    like = f(select_rows(gen, std::vector<int64_t>(mine.begin(), mine.end())));
    NR_CHECK(like.dim() == 2 && like.shape()[1] == N, "on_shards: f must give [rows, {}], got {}", N,
             shape_str(like.shape()));
    local = like.to(kFloat32).cpu().contiguous().to_vector<float>();
  }
  Tensor all = from_vector<float>(dist::all_gather(local), {B, N}).to(gen.response_mask.device());
  return like.defined() ? all.to(like.dtype()) : all;
}

namespace {
std::atomic<int64_t> g_sampled_tokens{0};
}  // namespace

int64_t sampled_tokens() { return g_sampled_tokens.load(); }

Rollout sample_responses(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                         const nn::GenerationConfig &cfg) {
  NR_CHECK(!prompts.empty(), "sample_responses: no prompts");
  std::vector<std::vector<int64_t>> ids;
  ids.reserve(prompts.size());
  for (const auto &p : prompts) ids.push_back(tok.encode_prompt(p));

  Rollout r;
  r.prompts = prompts;
  r.gen = nn::generate(policy, ids, cfg, tok.eos_id(), tok.pad_id());
  const int64_t B = (int64_t)prompts.size(), N = r.gen.response_ids.shape()[1];
  std::vector<int64_t> resp = r.gen.response_ids.cpu().contiguous().to_vector<int64_t>();
  std::vector<float> mask = r.gen.response_mask.cpu().contiguous().to_vector<float>();
  r.responses.reserve(prompts.size());
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> row;
    for (int64_t t = 0; t < N; ++t)
      if (mask[b * N + t] != 0) row.push_back(resp[b * N + t]);
    g_sampled_tokens += (int64_t)row.size();
    r.responses.push_back(tok.decode(row, /*skip_special=*/true));
    r.round_trips.push_back(round_trips(tok, std::move(row), r.responses.back()));
  }
  return r;
}

bool round_trips(const nn::Tokenizer &tok, std::vector<int64_t> ids, const std::string &text) {
  using nlohmann::json;
  if (!ids.empty() && ids.back() == tok.eos_id()) ids.pop_back();
  const std::string written = json(text).dump(-1, ' ', false, json::error_handler_t::replace);  // as write_jsonl
  return tok.encode(json::parse(written).get<std::string>(), /*allow_special=*/false) == ids;
}

// The sequence is [left-padded prompt (P) | response (N)]. Response token t sits at position P + t
// and is predicted by the logits at P - 1 + t, so only positions P-1 .. P+N-1 go through the LM
// head: token_logprobs on that window [B, N+1] returns exactly the N response log-probs.
Tensor response_logprobs(const nn::GPT &model, const nn::GenerationOutput &gen, double temperature,
                         Tensor *logits_out) {
  const int64_t P = gen.prompt_len, B = gen.sequences.shape()[0], N = gen.response_ids.shape()[1];
  NR_CHECK(P >= 1, "response_logprobs: the rollout has no prompt tokens (prompt_len = {})", P);
  NR_CHECK(gen.sequences.shape()[1] == P + N, "response_logprobs: sequences {} do not hold prompt_len {} + {} response tokens",
           shape_str(gen.sequences.shape()), P, N);
  if (N == 0) {
    if (logits_out) *logits_out = zeros({B, 0, model.config.vocab}, {.device = gen.sequences.device()});
    return zeros({B, 0}, {.device = gen.sequences.device()});
  }
  Tensor h = model.hidden(gen.sequences, gen.attention_mask);                // [B, P+N, C]
  Tensor logits = model.lm_logits(h.narrow(1, P - 1, N + 1));                // [B, N+1, V]
  Tensor ids = gen.sequences.narrow(1, P - 1, N + 1);                        // [B, N+1]
  Tensor rmask = gen.response_mask.to(logits.dtype());
  Tensor mask = cat({zeros({B, 1}, {.dtype = rmask.dtype(), .device = rmask.device()}), rmask}, 1);  // [B, N+1]
  if (logits_out) *logits_out = logits.narrow(1, 0, N);
  return nn::token_logprobs(logits, ids, mask, temperature);                // [B, N], 0 after EOS
}

Tensor reward_scores(const nn::ScalarModel &rm, const nn::GenerationOutput &gen) {
  return rm.score(gen.sequences, gen.attention_mask);
}

std::vector<double> oracle_scores(const Oracle &oracle, const Rollout &r) {
  NR_CHECK(r.prompts.size() == r.responses.size() && r.gen.finished.size() == r.prompts.size(),
           "oracle_scores: {} prompts, {} responses and {} finished flags", r.prompts.size(), r.responses.size(),
           r.gen.finished.size());
  std::vector<double> out;
  out.reserve(r.prompts.size());
  for (size_t i = 0; i < r.prompts.size(); ++i)
    out.push_back(oracle.score(r.prompts[i], r.responses[i], r.gen.finished[i]).total);
  return out;
}

}  // namespace nanorlhf::rlhf
