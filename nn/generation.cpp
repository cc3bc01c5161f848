// Batched sampling from a GPT: left-padded prompts, KV-cache prefill then one token per step,
// temperature / top-k / top-p / greedy, stop at EOS, log-probs under the distribution sampled from.
#include "nn/generation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "nn/distributed.h"

namespace nanorlhf::nn {

namespace {

// Restores the model's train/eval mode on every exit path.
struct ModeRestore {
  GPT &m;
  bool was;
  ~ModeRestore() { m.train(was); }
};

struct Choice {
  int64_t token;
  double logprob;
};

// One row's next token from raw logits z [V]. The sampling distribution is
// q(v) \propto \exp(z_v / \tau) on the kept set S (top-k, then the smallest top-p nucleus), 0 elsewhere;
// the returned log-prob is \log q(token) = z_t/\tau - \log\sum_{v \in S} \exp(z_v/\tau).
// `order` is scratch space. u ~ U[0, 1) picks the token (unused when greedy).
Choice choose(const float *logits, int64_t V, const GenerationConfig &cfg, double u, std::vector<double> &z,
              std::vector<int64_t> &order) {
  z.resize((size_t)V);
  const double inv_t = 1.0 / cfg.temperature;
  for (int64_t v = 0; v < V; ++v) z[v] = double(logits[v]) * inv_t;
  bool filter = (cfg.top_k > 0 && cfg.top_k < V) || cfg.top_p < 1.0;
  int64_t kept = V;  // the kept set is order[0, kept) when filtering, every token otherwise
  if (filter) {
    order.resize((size_t)V);
    std::iota(order.begin(), order.end(), 0);
    // Descending by logit, ties by index, so the result never depends on the sort's internals.
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] > z[b] || (z[a] == z[b] && a < b); });
    if (cfg.top_k > 0) kept = std::min(kept, cfg.top_k);
    if (cfg.top_p < 1.0) {
      double m = z[order[0]], s = 0;
      for (int64_t i = 0; i < kept; ++i) s += std::exp(z[order[i]] - m);
      double cum = 0;
      int64_t n = 0;
      while (n < kept) {  // smallest prefix whose mass reaches top_p (at least one token)
        cum += std::exp(z[order[n]] - m) / s;
        ++n;
        if (cum >= cfg.top_p) break;
      }
      kept = n;
    }
  }
  auto at = [&](int64_t i) { return filter ? order[i] : i; };
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < kept; ++i) m = std::max(m, z[at(i)]);
  double s = 0;
  for (int64_t i = 0; i < kept; ++i) s += std::exp(z[at(i)] - m);
  const double log_z = m + std::log(s);

  int64_t tok = at(0);
  if (cfg.greedy) {
    for (int64_t i = 1; i < kept; ++i)  // first maximum in index order, as argmax
      if (z[at(i)] > z[tok] || (z[at(i)] == z[tok] && at(i) < tok)) tok = at(i);
  } else {
    double target = u * s, cum = 0;  // inverse CDF over the kept set
    tok = at(kept - 1);
    for (int64_t i = 0; i < kept; ++i) {
      cum += std::exp(z[at(i)] - m);
      if (cum > target) { tok = at(i); break; }
    }
  }
  return {tok, z[tok] - log_z};
}

}  // namespace

// The rows of `prompts` in this process (a shard of a larger batch when cfg.total_rows is set).
static GenerationOutput generate_rows(GPT &model, const std::vector<std::vector<int64_t>> &prompts,
                               const GenerationConfig &cfg, int64_t eos_id, int64_t pad_id) {
  const int64_t V = model.config.vocab, ctx = model.config.ctx;
  NR_CHECK(!prompts.empty(), "generate: no prompts");
  NR_CHECK(cfg.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}", cfg.max_new_tokens);
  NR_CHECK(cfg.temperature > 0, "generate: temperature must be positive, got {}", cfg.temperature);
  NR_CHECK(cfg.top_k >= 0, "generate: top_k must be >= 0 (0 = off), got {}", cfg.top_k);
  NR_CHECK(cfg.top_p > 0 && cfg.top_p <= 1, "generate: top_p must be in (0, 1], got {}", cfg.top_p);
  NR_CHECK(pad_id >= 0 && pad_id < V && eos_id >= 0 && eos_id < V, "generate: eos_id {} and pad_id {} must be in [0, {})",
           eos_id, pad_id, V);
  const int64_t B = (int64_t)prompts.size();
  int64_t P = cfg.prompt_len;
  for (size_t b = 0; b < prompts.size(); ++b) {
    NR_CHECK(!prompts[b].empty(), "generate: prompt {} is empty", b);
    for (int64_t t : prompts[b]) NR_CHECK(t >= 0 && t < V, "generate: prompt {} has token {} outside [0, {})", b, t, V);
    P = std::max<int64_t>(P, (int64_t)prompts[b].size());
  }
  // Compared as max_new_tokens <= ctx - P: P + max_new_tokens overflows for a huge -n.
  NR_CHECK(cfg.max_new_tokens <= ctx - P,
           "generate: the longest prompt ({} tokens) + max_new_tokens ({}) exceeds the context ctx = {}; "
           "at most {} new tokens fit", P, cfg.max_new_tokens, ctx, std::max<int64_t>(ctx - P, 0));

  ModeRestore restore{model, model.is_training()};
  model.eval();
  NoGradGuard no_grad;
  RngStateGuard rng_guard;  // sampling draws from its own seeded stream; the global one is untouched
  manual_seed(cfg.seed);
  const Device dev = model.wte->weight.device();

  // Host copies of the growing batch, row-major with row stride L = P + max_new_tokens.
  const int64_t L = P + cfg.max_new_tokens;
  std::vector<int64_t> ids((size_t)(B * L), pad_id);
  std::vector<float> mask((size_t)(B * L), 0.f), lps((size_t)(B * L), 0.f);
  for (int64_t b = 0; b < B; ++b) {
    int64_t off = P - (int64_t)prompts[b].size();  // left padding
    for (size_t t = 0; t < prompts[b].size(); ++t) {
      ids[b * L + off + t] = prompts[b][t];
      mask[b * L + off + t] = 1.f;
    }
  }
  // The first T columns of the host arrays as [B, T] tensors on the model's device.
  auto ids_cols = [&](int64_t start, int64_t T) {
    std::vector<int64_t> v((size_t)(B * T));
    for (int64_t b = 0; b < B; ++b) std::copy_n(&ids[b * L + start], T, &v[b * T]);
    return from_vector<int64_t>(v, {B, T}).to(dev);
  };
  auto mask_cols = [&](int64_t T) {
    std::vector<float> v((size_t)(B * T));
    for (int64_t b = 0; b < B; ++b) std::copy_n(&mask[b * L], T, &v[b * T]);
    return from_vector<float>(v, {B, T}).to(dev);
  };
  // Logits of the last position [B, V], from the hidden state [B, T, C] (the LM head only reads one row).
  auto last_logits = [&](const Tensor &h) {
    int64_t T = h.shape()[1];
    return model.lm_logits(h.narrow(1, T - 1, 1)).reshape({B, V}).to(Device::cpu()).contiguous().to_vector<float>();
  };

  KVCache cache = model.make_cache();
  std::vector<bool> finished((size_t)B, false);
  std::vector<double> z;
  std::vector<int64_t> order;
  int64_t steps = 0;
  for (int64_t s = 0; s < cfg.max_new_tokens; ++s) {
    const int64_t cur = P + s;  // tokens so far
    std::vector<float> logits;
    if (!cfg.use_cache)
      logits = last_logits(model.hidden(ids_cols(0, cur), mask_cols(cur)));
    else if (s == 0)
      logits = last_logits(model.hidden(ids_cols(0, P), mask_cols(P), &cache));  // prefill
    else
      logits = last_logits(model.hidden(ids_cols(cur - 1, 1), mask_cols(cur), &cache));  // the newest token only
    std::vector<double> u;
    if (!cfg.greedy) u = rand({cfg.total_rows > 0 ? cfg.total_rows : B}, {kFloat64}).to_vector<double>();
    for (int64_t b = 0; b < B; ++b) {
      if (finished[b]) continue;  // stays pad_id, mask 0, log-prob 0
      Choice c = choose(&logits[b * V], V, cfg, cfg.greedy ? 0.0 : u[cfg.row_offset + b], z, order);
      ids[b * L + cur] = c.token;
      mask[b * L + cur] = 1.f;
      lps[b * L + cur] = (float)c.logprob;
      if (c.token == eos_id) finished[b] = true;
    }
    steps = s + 1;
    if (std::all_of(finished.begin(), finished.end(), [](bool f) { return f; })) break;
  }

  const int64_t N = steps;
  GenerationOutput out;
  out.prompt_len = P;
  out.finished = finished;
  std::vector<int64_t> seq((size_t)(B * (P + N))), resp((size_t)(B * N));
  std::vector<float> seq_mask((size_t)(B * (P + N))), resp_mask((size_t)(B * N)), resp_lp((size_t)(B * N));
  // Pointer arithmetic, not &v[i]: with N = 0 (max_new_tokens 0) the response vectors are empty
  // and there is no element to take the address of.
  for (int64_t b = 0; b < B; ++b) {
    std::copy_n(ids.data() + b * L, P + N, seq.data() + b * (P + N));
    std::copy_n(mask.data() + b * L, P + N, seq_mask.data() + b * (P + N));
    std::copy_n(ids.data() + b * L + P, N, resp.data() + b * N);
    std::copy_n(mask.data() + b * L + P, N, resp_mask.data() + b * N);
    std::copy_n(lps.data() + b * L + P, N, resp_lp.data() + b * N);
  }
  out.sequences = from_vector<int64_t>(seq, {B, P + N}).to(dev);
  out.attention_mask = from_vector<float>(seq_mask, {B, P + N}).to(dev);
  out.response_ids = from_vector<int64_t>(resp, {B, N}).to(dev);
  out.response_mask = from_vector<float>(resp_mask, {B, N}).to(dev);
  out.response_logprobs = from_vector<float>(resp_lp, {B, N}).to(dev);
  return out;
}

// Data parallelism: each rank samples its consecutive share of the rows, with the prompts padded
// to the whole batch's longest and the draws of the whole batch, then every rank gathers every
// row, the responses right-padded to the longest of all ranks.
GenerationOutput generate(GPT &model, const std::vector<std::vector<int64_t>> &prompts, const GenerationConfig &cfg,
                          int64_t eos_id, int64_t pad_id) {
  const int64_t R = dist::world_size();
  if (!cfg.split_across_ranks || R == 1 || cfg.total_rows > 0) return generate_rows(model, prompts, cfg, eos_id, pad_id);
  NR_CHECK(!prompts.empty(), "generate: no prompts");
  const int64_t B = (int64_t)prompts.size(), r = dist::rank();
  int64_t P = 0;
  for (const auto &p : prompts) P = std::max<int64_t>(P, (int64_t)p.size());
  const int64_t begin = r * (B / R) + std::min(r, B % R), n = B / R + (r < B % R ? 1 : 0);
  GenerationConfig local = cfg;
  local.row_offset = begin, local.total_rows = B, local.prompt_len = P;
  GenerationOutput mine;
  int64_t N_local = 0;
  if (n > 0) {
    mine = generate_rows(model, {prompts.begin() + begin, prompts.begin() + begin + n}, local, eos_id, pad_id);
    N_local = mine.response_ids.shape()[1];
  }
  int64_t N = 0;
  for (int64_t x : dist::all_gather(std::vector<int64_t>{N_local})) N = std::max(N, x);
  // This rank's rows, right-padded to N: [n, P + N] sequences and masks, [n, N] responses.
  std::vector<int64_t> seq((size_t)(n * (P + N)), pad_id), resp((size_t)(n * N), pad_id), fin;
  std::vector<float> seq_mask((size_t)(n * (P + N)), 0.f), resp_mask((size_t)(n * N), 0.f), lp((size_t)(n * N), 0.f);
  if (n > 0) {
    const std::vector<int64_t> s_ids = mine.sequences.cpu().contiguous().to_vector<int64_t>();
    const std::vector<float> s_mask = mine.attention_mask.cpu().contiguous().to_vector<float>();
    const std::vector<float> r_lp = mine.response_logprobs.cpu().contiguous().to_vector<float>();
    const int64_t W = P + N_local;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t t = 0; t < W; ++t) {
        seq[b * (P + N) + t] = s_ids[b * W + t];
        seq_mask[b * (P + N) + t] = s_mask[b * W + t];
        if (t >= P) {
          resp[b * N + t - P] = s_ids[b * W + t];
          resp_mask[b * N + t - P] = s_mask[b * W + t];
          lp[b * N + t - P] = r_lp[b * N_local + t - P];
        }
      }
    for (bool f : mine.finished) fin.push_back(f);
  }
  const Device dev = model.wte->weight.device();
  GenerationOutput out;
  out.prompt_len = P;
  out.sequences = from_vector<int64_t>(dist::all_gather(seq), {B, P + N}).to(dev);
  out.attention_mask = from_vector<float>(dist::all_gather(seq_mask), {B, P + N}).to(dev);
  out.response_ids = from_vector<int64_t>(dist::all_gather(resp), {B, N}).to(dev);
  out.response_mask = from_vector<float>(dist::all_gather(resp_mask), {B, N}).to(dev);
  out.response_logprobs = from_vector<float>(dist::all_gather(lp), {B, N}).to(dev);
  for (int64_t f : dist::all_gather(fin)) out.finished.push_back(f != 0);
  return out;
}

}  // namespace nanorlhf::nn
