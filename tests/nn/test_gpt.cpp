// The GPT, its config and position ids, the KV cache, the scalar-head model and the losses:
// references, invariances (causality, padding), gradcheck, state_dict, and a tiny overfitting run.
#include <cmath>

#include "nn/gpt.h"
#include "nn/losses.h"
#include "nn_test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::nn;
using namespace nr_test;

namespace {

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

// ---- config and position ids ----

TEST(GPTConfig, JsonRoundTripAndUnknownKeys) {
  GPTConfig c{.vocab = 50, .ctx = 32, .d_model = 24, .n_layer = 3, .n_head = 6, .dropout = 0.1, .tie_weights = true};
  GPTConfig d = GPTConfig::from_json(c.to_json());
  EXPECT_EQ(d.to_json(), c.to_json());
  EXPECT_EQ(GPTConfig::from_json(nlohmann::json::object()).to_json(), GPTConfig{}.to_json());  // defaults
  std::string msg = error_of([] { GPTConfig::from_json({{"n_layers", 2}}); });
  EXPECT_NE(msg.find("n_layers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("n_layer, n_head"), std::string::npos) << msg;  // lists the valid keys
  EXPECT_THROW(GPTConfig::from_json({{"d_model", 10}, {"n_head", 3}}), Error);
  EXPECT_THROW(GPTConfig::from_json({{"vocab", "big"}}), Error);
  EXPECT_THROW(GPTConfig::from_json({{"dropout", 1.5}}), Error);
}

// GPT-2's layer_norm_epsilon: written only when not the default 1e-5, so older run configs (which
// lack the key) and newer ones with the default read and write the same JSON.
TEST(GPTConfig, LayerNormEpsilonReachesEveryLayerNorm) {
  EXPECT_FALSE(GPTConfig{}.to_json().contains("layer_norm_eps"));
  GPTConfig c = GPTConfig::from_json({{"d_model", 8}, {"n_head", 2}, {"n_layer", 2}, {"layer_norm_eps", 1e-6}});
  EXPECT_EQ(c.to_json()["layer_norm_eps"], 1e-6);
  EXPECT_EQ(GPTConfig::from_json(c.to_json()).layer_norm_eps, 1e-6);
  EXPECT_THROW(GPTConfig::from_json({{"layer_norm_eps", 0}}), Error);
  GPT m(c);
  EXPECT_EQ(m.ln_f->eps, 1e-6);
  for (auto &b : m.blocks) {
    EXPECT_EQ(b->ln1->eps, 1e-6);
    EXPECT_EQ(b->ln2->eps, 1e-6);
  }
}

TEST(PositionIds, CountRealTokensOnly) {
  Tensor m = mask_tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 0}, 2, 5);
  EXPECT_EQ(position_ids_from_mask(m).to_vector<int64_t>(), (std::vector<int64_t>{0, 0, 0, 1, 2, 0, 1, 2, 3, 3}));
  EXPECT_EQ(position_ids_from_mask(m, 4).to_vector<int64_t>(), (std::vector<int64_t>{4, 4, 4, 5, 6, 4, 5, 6, 7, 7}));
}

// ---- GPT ----

TEST(GPT, ForwardIsTheComposition) {
  manual_seed(1);
  GPT g(tiny_config());
  Tensor idx = ids_tensor({1, 5, 7, 2, 0, 12}, 2, 3);
  Tensor x = g.wte->forward(idx) + g.wpe->forward(ids_tensor({0, 1, 2, 0, 1, 2}, 2, 3));
  for (auto &b : g.blocks) x = b->forward(x);
  Tensor ref = g.lm_head->forward(g.ln_f->forward(x));
  Tensor logits = g(idx);
  ASSERT_EQ(logits.shape(), Shape({2, 3, 13}));
  EXPECT_TRUE(allclose(logits, ref.to_vector<double>(), {.atol = 0, .rtol = 0}));
  // GPT-2 init: residual projections are scaled down by sqrt(2 n_layer).
  GPT big({.vocab = 16, .ctx = 8, .d_model = 64, .n_layer = 8, .n_head = 4});
  auto w = big.blocks[0]->mlp->proj->weight.to_vector<double>();
  double s2 = 0;
  for (double v : w) s2 += v * v;
  EXPECT_NEAR(std::sqrt(s2 / w.size()), 0.02 / 4, 0.0005);
}

TEST(GPT, TiedHeadSharesTheEmbedding) {
  manual_seed(2);
  GPTConfig c = tiny_config();
  c.tie_weights = true;
  GPT g(c);
  EXPECT_EQ(g.lm_head, nullptr);
  for (auto &[name, p] : g.named_parameters()) EXPECT_EQ(name.find("lm_head"), std::string::npos);
  Tensor idx = ids_tensor({3, 4, 5}, 1, 3);
  Tensor h = g.hidden(idx);
  EXPECT_TRUE(allclose(g(idx), h.matmul(g.wte->weight.t()).to_vector<double>(), {.atol = 1e-7, .rtol = 1e-6}));
}

TEST(GPT, CausalFutureTokensDoNotChangeEarlierLogits) {
  manual_seed(3);
  GPT g(tiny_config());
  Tensor a = g(ids_tensor({1, 2, 3, 4, 5, 6}, 1, 6)), b = g(ids_tensor({1, 2, 3, 9, 0, 11}, 1, 6));
  EXPECT_EQ(max_abs_diff(a.narrow(1, 0, 3).contiguous(), b.narrow(1, 0, 3).contiguous()), 0.0);
  EXPECT_GT(max_abs_diff(a.narrow(1, 3, 1).contiguous(), b.narrow(1, 3, 1).contiguous()), 1e-4);
}

TEST(GPT, LeftPaddingGivesTheUnpaddedLogits) {
  manual_seed(4);
  GPT g(tiny_config());
  Tensor alone = g(ids_tensor({5, 6, 7}, 1, 3));
  // Row 0: the same prompt left-padded by 3 (pad id 0); row 1: an unrelated full row.
  Tensor padded = g.forward(ids_tensor({0, 0, 0, 5, 6, 7, 1, 2, 3, 4, 5, 6}, 2, 6),
                            mask_tensor({0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 2, 6));
  Tensor real = padded.select(0, 0).narrow(0, 3, 3).contiguous();
  EXPECT_TRUE(allclose(real, alone.select(0, 0).to_vector<double>(), {.atol = 1e-5, .rtol = 0}));
  // Changing a pad token's id changes no real position.
  Tensor other = g.forward(ids_tensor({9, 3, 1, 5, 6, 7}, 1, 6), mask_tensor({0, 0, 0, 1, 1, 1}, 1, 6));
  EXPECT_TRUE(allclose(other.select(0, 0).narrow(0, 3, 3).contiguous(), real.to_vector<double>(), {.atol = 1e-6, .rtol = 0}));
}

// Incremental decoding (prefill, then one token at a time) against one full forward.
void check_cache(const GPTConfig &c) {
  GPT g(c);
  int64_t B = 2, T = 7;
  Tensor idx = ids_tensor({0, 0, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7}, B, T);
  Tensor m = mask_tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, B, T);
  NoGradGuard ng;
  Tensor full = g.forward(idx, m);
  KVCache cache = g.make_cache();
  std::vector<Tensor> parts = {g.forward(idx.narrow(1, 0, 4).contiguous(), m.narrow(1, 0, 4).contiguous(), &cache)};
  for (int64_t t = 4; t < T; ++t)
    parts.push_back(g.forward(idx.narrow(1, t, 1).contiguous(), m.narrow(1, 0, t + 1).contiguous(), &cache));
  EXPECT_EQ(cache.length(), T);
  Tensor inc = cat(parts, 1);
  auto f = full.to_vector<double>(), i = inc.to_vector<double>(), mv = m.to_vector<double>();
  std::vector<double> got, ref;
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t v = 0; v < c.vocab && mv[r]; ++v) got.push_back(i[r * c.vocab + v]), ref.push_back(f[r * c.vocab + v]);
  ASSERT_TRUE(allclose(got, ref, {.atol = 1e-4, .rtol = 0})) << "real positions, incremental vs full";
  // Without a mask: positions continue from the cache length.
  KVCache c2 = g.make_cache();
  Tensor ids2 = idx.select(0, 1).unsqueeze(0).contiguous();
  Tensor full2 = g.forward(ids2);
  g.forward(ids2.narrow(1, 0, 5).contiguous(), Tensor(), &c2);
  Tensor last = g.forward(ids2.narrow(1, 5, 2).contiguous(), Tensor(), &c2);
  EXPECT_TRUE(allclose(last, full2.narrow(1, 5, 2).contiguous().to_vector<double>(), {.atol = 1e-4, .rtol = 0}));
}

TEST(GPT, KVCacheMatchesFullRecomputeWithLeftPadding) {
  manual_seed(5);
  check_cache(tiny_config());
  GPTConfig t = tiny_config(17, 12, 16, 3, 4);
  t.tie_weights = true;
  check_cache(t);
}

TEST(GPT, ContextOverflowIsAClearError) {
  manual_seed(6);
  GPT g(tiny_config(13, 4));
  std::string msg = error_of([&] { g(zeros({1, 5}, {kInt64})); });
  EXPECT_NE(msg.find("5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ctx = 4"), std::string::npos) << msg;
  KVCache c = g.make_cache();
  g.forward(zeros({1, 3}, {kInt64}), Tensor(), &c);
  EXPECT_THROW(g.forward(zeros({1, 2}, {kInt64}), Tensor(), &c), Error);
  EXPECT_THROW(g.forward(zeros({1, 2}, {kInt64}), ones({1, 3})), Error);  // mask of the wrong length
}

TEST(GPT, GradcheckAllParameters) {
  manual_seed(7);
  GPT g(tiny_config(7, 8, 4, 1, 2));
  to_float64(g);
  Tensor idx = ids_tensor({1, 2, 3, 4, 0, 6, 5, 1}, 2, 4);
  Tensor m = mask_tensor({0, 1, 1, 1, 1, 1, 1, 1}, 2, 4);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &) { return g.forward(idx, m); }, g.parameters(),
                               {.max_elements = 48});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(GPT, StateDictRoundTrip) {
  manual_seed(8);
  GPT a(tiny_config());
  manual_seed(9);
  GPT b(tiny_config());
  Tensor idx = ids_tensor({1, 2, 3}, 1, 3);
  EXPECT_GT(max_abs_diff(a(idx), b(idx)), 1e-4);
  auto sd = a.state_dict();
  EXPECT_TRUE(sd.count("blocks.1.attn.qkv.weight"));
  EXPECT_TRUE(sd.count("lm_head.weight"));
  EXPECT_FALSE(sd.count("lm_head.bias"));
  b.load_state_dict(sd);
  EXPECT_EQ(max_abs_diff(a(idx), b(idx)), 0.0);
}

// ---- ScalarModel ----

TEST(ScalarModel, ScoreReadsTheLastRealToken) {
  manual_seed(10);
  ScalarModel rm(tiny_config());
  auto w = rm.head->weight.to_vector<double>();
  EXPECT_TRUE(allclose(rm.head->bias, {0.0}, {.atol = 0, .rtol = 0}));
  // Right-padded rows: the score is the value at the last real token; pads after it do not matter.
  Tensor idx = ids_tensor({4, 5, 6, 0, 0, 7, 8, 9, 10, 11}, 2, 5);
  Tensor m = mask_tensor({1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, 2, 5);
  Tensor s = rm.score(idx, m);
  ASSERT_EQ(s.shape(), Shape({2}));
  auto v = rm.values(idx, m).to_vector<double>();
  EXPECT_TRUE(allclose(s, {v[2], v[9]}, {.atol = 1e-7, .rtol = 1e-6}));
  Tensor s2 = rm.score(ids_tensor({4, 5, 6, 12, 3, 7, 8, 9, 10, 11}, 2, 5), m);
  EXPECT_TRUE(allclose(s2, s.to_vector<double>(), {.atol = 1e-7, .rtol = 1e-6}));
  // Left-padded: the same tokens give the same score.
  Tensor s3 = rm.score(ids_tensor({0, 0, 4, 5, 6}, 1, 5), mask_tensor({0, 0, 1, 1, 1}, 1, 5));
  EXPECT_NEAR(s3.item(), s.to_vector<double>()[0], 1e-5);
  EXPECT_THROW(rm.score(idx, zeros({2, 5})), Error);
  // Gradients reach the head and the backbone.
  s.sum().backward();
  EXPECT_TRUE(rm.head->weight.grad().defined());
  EXPECT_TRUE(rm.backbone->wte->weight.grad().defined());
}

TEST(ScalarModel, HeadInitAndBackboneCopy) {
  manual_seed(11);
  GPTConfig c = tiny_config(13, 16, 64, 1, 2);
  ScalarModel rm(c);
  auto w = rm.head->weight.to_vector<double>();
  double s2 = 0;
  for (double x : w) s2 += x * x;
  EXPECT_NEAR(std::sqrt(s2 / w.size()), 1 / std::sqrt(65.0), 0.04);
  GPT g(c);
  rm.init_backbone_from(g);
  Tensor idx = ids_tensor({1, 2, 3, 4}, 1, 4);
  EXPECT_EQ(max_abs_diff(rm.backbone->hidden(idx), g.hidden(idx)), 0.0);
  // Gradcheck through score in float64.
  ScalarModel small(tiny_config(7, 8, 4, 1, 2));
  to_float64(small);
  Tensor i2 = ids_tensor({1, 2, 3, 0, 4, 5, 6, 1}, 2, 4), m2 = mask_tensor({1, 1, 1, 0, 1, 1, 1, 1}, 2, 4);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &) { return small.score(i2, m2); }, small.parameters(),
                               {.max_elements = 32});
  EXPECT_TRUE(r.ok) << r.message;
}

// ---- losses ----

// Host log-softmax of row `r` of logits [R, V] at temperature tau.
std::vector<double> host_log_softmax(const std::vector<double> &l, int64_t r, int64_t V, double tau) {
  double m = -INFINITY, s = 0;
  for (int64_t v = 0; v < V; ++v) m = std::max(m, l[r * V + v] / tau);
  for (int64_t v = 0; v < V; ++v) s += std::exp(l[r * V + v] / tau - m);
  std::vector<double> out(V);
  for (int64_t v = 0; v < V; ++v) out[v] = l[r * V + v] / tau - m - std::log(s);
  return out;
}

TEST(Losses, AgainstHostReferencesAndGradcheck) {
  manual_seed(12);
  int64_t B = 2, T = 4, V = 5;
  Tensor logits = rand64({B, T, V}, -3, 3);
  Tensor ids = ids_tensor({1, 4, 0, 2, 3, 3, 1, 0}, B, T);
  Tensor m = mask_tensor({0, 1, 1, 0, 0, 0, 1, 1}, B, T);
  auto l = logits.to_vector<double>(), mv = m.to_vector<double>();
  auto iv = ids.to_vector<int64_t>();
  for (double tau : {1.0, 0.7}) {
    std::vector<double> tok(B * (T - 1), 0.0), seq(B, 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t + 1 < T; ++t) {
        auto ls = host_log_softmax(l, b * T + t, V, tau);
        if (!mv[b * T + t + 1]) continue;
        tok[b * (T - 1) + t] = ls[iv[b * T + t + 1]];
        seq[b] += ls[iv[b * T + t + 1]];
      }
    EXPECT_TRUE(allclose(token_logprobs(logits, ids, m, tau), tok, {.atol = 1e-12, .rtol = 1e-10}));
    EXPECT_TRUE(allclose(sequence_logprobs(logits, ids, m, tau), seq, {.atol = 1e-12, .rtol = 1e-10}));
  }
  auto g1 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return sequence_logprobs(in[0], ids, m); }, {logits});
  EXPECT_TRUE(g1.ok) << g1.message;
  auto g2 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return token_logprobs(in[0], ids, m, 0.7); }, {logits});
  EXPECT_TRUE(g2.ok) << g2.message;
  EXPECT_THROW(token_logprobs(logits, ids, m, 0.0), Error);
  EXPECT_THROW(token_logprobs(logits, ids_tensor({1, 2, 3}, 1, 3), m), Error);
}

// The chunked path (only the counted positions through the head, chunk rows at a time) gives the
// logits path's log-probs and every parameter's gradient, float64, tied and untied heads, with a
// temperature, a padded row, a row with nothing to count, and chunks that do not divide the rows.
TEST(Losses, ChunkedFromTheModelEqualsTheLogitsPath) {
  for (const bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    manual_seed(21);
    nanorlhf::nn::GPTConfig cfg = tiny_config();
    cfg.tie_weights = tied;
    nanorlhf::nn::GPT g(cfg);
    to_float64(g);
    g.eval();
    const int64_t B = 3, T = 6;
    Tensor ids = ids_tensor({1, 4, 0, 2, 3, 3, 5, 6, 7, 8, 0, 0, 9, 10, 11, 12, 2, 1}, B, T);
    Tensor attn = mask_tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1}, B, T).to(kFloat64);
    Tensor m = mask_tensor({0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, B, T).to(kFloat64);
    for (double tau : {1.0, 0.7}) {
      std::vector<std::vector<double>> grads[2];
      std::vector<double> values[2];
      for (int path = 0; path < 2; ++path) {
        g.zero_grad();
        Tensor tok = path == 0 ? token_logprobs(g.forward(ids, attn), ids, m, tau)
                               : token_logprobs(g, ids, attn, m, tau, /*chunk=*/2);
        values[path] = tok.to_vector<double>();
        (tok * tok).sum().backward();  // a loss that weighs each token differently
        for (auto &p : g.parameters()) grads[path].push_back(p.grad().to_vector<double>());
      }
      EXPECT_TRUE(allclose(from_vector<double>(values[1], {B, T - 1}), values[0], {.atol = 1e-12, .rtol = 1e-10}));
      for (size_t i = 0; i < grads[0].size(); ++i)
        EXPECT_TRUE(allclose(from_vector<double>(grads[1][i], {int64_t(grads[1][i].size())}), grads[0][i],
                             {.atol = 1e-12, .rtol = 1e-9}))
            << "parameter " << i;
    }
    EXPECT_TRUE(allclose(sequence_logprobs(g, ids, attn, m), sequence_logprobs(g.forward(ids, attn), ids, m).to_vector<double>(),
                         {.atol = 1e-12, .rtol = 1e-10}));
    // Nothing to count anywhere: zeros, still on the graph.
    Tensor none = token_logprobs(g, ids, attn, zeros({B, T}, {.dtype = kFloat64}), 1.0);
    EXPECT_TRUE(allclose(none, std::vector<double>(B * (T - 1), 0.0), {.atol = 0, .rtol = 0}));
    none.sum().backward();
  }
}

// ---- training ----

// Next-token targets for cross_entropy: position t predicts ids[t+1]; the last predicts nothing (-100).
Tensor next_token_targets(const Tensor &ids) {
  const int64_t B = ids.shape()[0], T = ids.shape()[1];
  std::vector<int64_t> v = ids.to_vector<int64_t>(), tgt(B * T, -100);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) tgt[b * T + t] = v[b * T + t + 1];
  return from_vector<int64_t>(tgt, {B, T});
}

// A tiny GPT memorises 4 sequences with plain SGD; returns the losses.
std::vector<double> overfit(int steps) {
  manual_seed(13);
  GPT g(tiny_config(13, 16, 16, 2, 2));
  int64_t B = 4, T = 8;
  Tensor ids = randint(0, 13, {B, T});
  Tensor tgt = next_token_targets(ids);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    g.zero_grad();
    Tensor loss = cross_entropy(g(ids), tgt);
    loss.backward();
    losses.push_back(loss.item());
    NoGradGuard ng;
    for (auto &p : g.parameters()) p.copy_(p - p.grad() * 0.5);  // SGD, lr 0.5
  }
  return losses;
}

TEST(GPT, TinyModelOverfitsASmallBatchReproducibly) {
  auto a = overfit(80);
  EXPECT_NEAR(a.front(), std::log(13.0), 0.3);  // near-uniform at init
  EXPECT_LT(a.back(), 0.3) << "first " << a.front();
  auto b = overfit(80);
  EXPECT_EQ(a, b);  // same seed, same machine: bit-identical losses
}

}  // namespace
