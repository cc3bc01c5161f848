// generate(): reproducible sampling, greedy = argmax of a full forward, EOS handling and padding,
// top-k / top-p renormalisation, and returned log-probs equal to token_logprobs of a full forward.
#include <cmath>
#include <limits>
#include <set>

#include "nn/generation.h"
#include "nn/losses.h"
#include "nn_test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::nn;
using namespace nr_test;

namespace {

constexpr int64_t kPad = 0, kEos = 1;

const std::vector<std::vector<int64_t>> kPrompts = {{3, 4, 5}, {6}, {7, 8, 9, 10, 11}, {2, 2}};

GPT make_model(uint64_t seed = 1) {
  manual_seed(seed);
  GPT g(tiny_config(13, 24, 16, 2, 2));
  // Sharper logits than the init gives, so sampling is not near-uniform.
  NoGradGuard ng;
  g.lm_head->weight.copy_((g.lm_head->weight * 40.0).detach());
  return g;
}

// Log-probs of the response tokens under a full forward of the returned sequences: [B, N].
Tensor full_logprobs(GPT &g, const GenerationOutput &o, double tau) {
  NoGradGuard ng;
  Tensor logits = g.forward(o.sequences, o.attention_mask);
  Tensor lp = token_logprobs(logits, o.sequences, o.attention_mask, tau);  // [B, P+N-1]
  int64_t N = o.response_ids.shape()[1];
  return lp.narrow(1, o.prompt_len - 1, N).contiguous();
}

TEST(Generate, ShapesPaddingAndReproducibility) {
  GPT g = make_model();
  GenerationConfig cfg{.max_new_tokens = 6, .temperature = 1.0, .seed = 42};
  auto a = generate(g, kPrompts, cfg, kEos, kPad);
  int64_t B = 4, P = 5, N = a.response_ids.shape()[1];
  EXPECT_EQ(a.prompt_len, P);
  EXPECT_GE(N, 1);
  EXPECT_LE(N, 6);
  EXPECT_EQ(a.sequences.shape(), Shape({B, P + N}));
  EXPECT_EQ(a.response_logprobs.shape(), Shape({B, N}));
  // Prompts are left-padded with mask 0.
  auto seq = a.sequences.to_vector<int64_t>();
  auto m = a.attention_mask.to_vector<double>();
  EXPECT_EQ(std::vector<int64_t>(seq.begin() + (P + N), seq.begin() + (P + N) + P), (std::vector<int64_t>{0, 0, 0, 0, 6}));
  EXPECT_EQ(std::vector<double>(m.begin() + (P + N), m.begin() + (P + N) + P), (std::vector<double>{0, 0, 0, 0, 1}));
  // Response columns of sequences are response_ids.
  EXPECT_EQ(a.sequences.narrow(1, P, N).contiguous().to_vector<int64_t>(), a.response_ids.to_vector<int64_t>());
  EXPECT_EQ(a.attention_mask.narrow(1, P, N).contiguous().to_vector<double>(), a.response_mask.to_vector<double>());
  // Same seed -> same samples; another seed -> others.
  auto b = generate(g, kPrompts, cfg, kEos, kPad);
  EXPECT_EQ(a.sequences.to_vector<int64_t>(), b.sequences.to_vector<int64_t>());
  EXPECT_EQ(a.response_logprobs.to_vector<double>(), b.response_logprobs.to_vector<double>());
  cfg.seed = 43;
  cfg.max_new_tokens = 12;
  auto c = generate(g, kPrompts, cfg, kEos, kPad);
  EXPECT_NE(a.response_ids.to_vector<int64_t>(), c.response_ids.narrow(1, 0, N).contiguous().to_vector<int64_t>());
}

TEST(Generate, LeavesGlobalRngAndModeAlone) {
  GPT g = make_model();
  manual_seed(5);
  double expect = rand({1}).item();
  manual_seed(5);
  g.train();
  generate(g, kPrompts, {.max_new_tokens = 3, .seed = 9}, kEos, kPad);
  EXPECT_EQ(rand({1}).item(), expect);
  EXPECT_TRUE(g.is_training());
  g.eval();
  generate(g, kPrompts, {.max_new_tokens = 3, .seed = 9}, kEos, kPad);
  EXPECT_FALSE(g.is_training());
}

TEST(Generate, GreedyIsArgmaxOfTheFullForward) {
  GPT g = make_model(2);
  auto o = generate(g, kPrompts, {.max_new_tokens = 8, .greedy = true}, kEos, kPad);
  Tensor logits = g.forward(o.sequences, o.attention_mask);
  int64_t B = 4, P = o.prompt_len, N = o.response_ids.shape()[1];
  auto am = argmax(logits, -1).to_vector<int64_t>();  // [B, P+N]
  auto r = o.response_ids.to_vector<int64_t>();
  auto rm = o.response_mask.to_vector<double>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < N && rm[b * N + t]; ++t) EXPECT_EQ(r[b * N + t], am[b * (P + N) + P + t - 1]) << b << "," << t;
  // top_k = 1 samples the argmax whatever the seed, with log-prob 0 (a point mass).
  auto k1 = generate(g, kPrompts, {.max_new_tokens = 8, .top_k = 1, .seed = 77}, kEos, kPad);
  EXPECT_EQ(k1.sequences.to_vector<int64_t>(), o.sequences.to_vector<int64_t>());
  for (double v : k1.response_logprobs.to_vector<double>()) EXPECT_EQ(v, 0.0);
  // Padding invariance: each prompt alone gives the same greedy continuation as in the batch.
  for (int64_t b = 0; b < B; ++b) {
    auto one = generate(g, {kPrompts[b]}, {.max_new_tokens = 8, .greedy = true}, kEos, kPad);
    int64_t n = one.response_ids.shape()[1];
    EXPECT_EQ(one.response_ids.to_vector<int64_t>(), o.response_ids.select(0, b).narrow(0, 0, n).contiguous().to_vector<int64_t>());
  }
}

TEST(Generate, LogprobsMatchAFullForwardAtTheSameTemperature) {
  GPT g = make_model(3);
  for (bool cache : {true, false})
    for (double tau : {1.0, 0.7}) {
      GenerationConfig cfg{.max_new_tokens = 10, .temperature = tau, .use_cache = cache, .seed = 11};
      auto o = generate(g, kPrompts, cfg, kEos, kPad);
      Tensor ref = full_logprobs(g, o, tau);
      EXPECT_TRUE(allclose(o.response_logprobs, ref.to_vector<double>(), {.atol = 1e-4, .rtol = 0})) << "cache " << cache << " tau " << tau;
    }
  // The cache changes nothing: same seed, same tokens.
  auto a = generate(g, kPrompts, {.max_new_tokens = 10, .use_cache = true, .seed = 5}, kEos, kPad);
  auto b = generate(g, kPrompts, {.max_new_tokens = 10, .use_cache = false, .seed = 5}, kEos, kPad);
  EXPECT_EQ(a.sequences.to_vector<int64_t>(), b.sequences.to_vector<int64_t>());
}

TEST(Generate, TopKTopPSampleFromTheRenormalisedNucleus) {
  GPT g = make_model(4);
  for (auto [k, p] : {std::pair<int64_t, double>{3, 1.0}, {0, 0.8}, {5, 0.6}}) {
    double tau = 0.9;
    auto o = generate(g, kPrompts, {.max_new_tokens = 8, .temperature = tau, .top_k = k, .top_p = p, .seed = 3}, kEos, kPad);
    NoGradGuard ng;
    auto logits = g.forward(o.sequences, o.attention_mask).to_vector<double>();
    int64_t B = 4, P = o.prompt_len, N = o.response_ids.shape()[1], V = 13;
    auto r = o.response_ids.to_vector<int64_t>();
    auto rm = o.response_mask.to_vector<double>();
    auto lp = o.response_logprobs.to_vector<double>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < N && rm[b * N + t]; ++t) {
        // Reference: sort by logit, keep the top k, then the smallest prefix with mass >= p; renormalise.
        const double *z = &logits[(b * (P + N) + P + t - 1) * V];
        std::vector<int64_t> ord(V);
        for (int64_t v = 0; v < V; ++v) ord[v] = v;
        std::sort(ord.begin(), ord.end(), [&](int64_t x, int64_t y) { return z[x] > z[y]; });
        int64_t kept = k > 0 ? k : V;
        double tot = 0, cum = 0;
        for (int64_t i = 0; i < kept; ++i) tot += std::exp((z[ord[i]] - z[ord[0]]) / tau);
        int64_t n = 0;
        while (n < kept) {
          cum += std::exp((z[ord[n]] - z[ord[0]]) / tau) / tot;
          ++n;
          if (cum >= p) break;
        }
        double s = 0;
        std::set<int64_t> keep;
        for (int64_t i = 0; i < n; ++i) {
          s += std::exp((z[ord[i]] - z[ord[0]]) / tau);
          keep.insert(ord[i]);
        }
        int64_t tok = r[b * N + t];
        EXPECT_TRUE(keep.count(tok)) << "token " << tok << " outside the kept set (k " << k << ", p " << p << ")";
        EXPECT_NEAR(lp[b * N + t], (z[tok] - z[ord[0]]) / tau - std::log(s), 1e-4);
      }
  }
}

TEST(Generate, EosFinishesARowAndPadsAfterIt) {
  GPT g = make_model(5);
  // Many rows at a high temperature: most emit EOS within 20 steps (vocab 13).
  std::vector<std::vector<int64_t>> prompts(16, std::vector<int64_t>{4, 5});
  for (size_t i = 0; i < prompts.size(); ++i) prompts[i][1] = 2 + (int64_t)i % 11;
  auto o = generate(g, prompts, {.max_new_tokens = 20, .temperature = 3.0, .seed = 1}, kEos, kPad);
  int64_t B = 16, N = o.response_ids.shape()[1];
  auto r = o.response_ids.to_vector<int64_t>();
  auto m = o.response_mask.to_vector<double>();
  auto lp = o.response_logprobs.to_vector<double>();
  int finished = 0;
  bool all_finished_early = true;
  for (int64_t b = 0; b < B; ++b) {
    int64_t eos_at = -1;
    for (int64_t t = 0; t < N; ++t) {
      if (eos_at >= 0) {
        EXPECT_EQ(r[b * N + t], kPad);
        EXPECT_EQ(m[b * N + t], 0.0);
        EXPECT_EQ(lp[b * N + t], 0.0);
      } else {
        EXPECT_EQ(m[b * N + t], 1.0);
        EXPECT_LT(lp[b * N + t], 0.0);
        if (r[b * N + t] == kEos) eos_at = t;
      }
    }
    EXPECT_EQ(o.finished[b], eos_at >= 0);
    finished += eos_at >= 0;
    all_finished_early &= eos_at >= 0;
  }
  EXPECT_GE(finished, 8);
  if (all_finished_early) {
    EXPECT_LT(N, 20);  // stops as soon as every row is done
  }
  // A forced stop: make EOS the greedy first token, so every row ends after one step.
  auto first = generate(g, {{3, 4}}, {.max_new_tokens = 5, .greedy = true}, kEos, kPad);
  int64_t eos = first.response_ids.to_vector<int64_t>()[0];
  auto stop = generate(g, {{3, 4}}, {.max_new_tokens = 5, .greedy = true}, eos, kPad == eos ? 2 : kPad);
  EXPECT_EQ(stop.response_ids.shape(), Shape({1, 1}));
  EXPECT_TRUE(stop.finished[0]);
}

TEST(Generate, ChecksItsInputs) {
  GPT g = make_model();
  EXPECT_THROW(generate(g, {}, {}, kEos, kPad), Error);
  EXPECT_THROW(generate(g, {{1, 2}, {}}, {}, kEos, kPad), Error);
  EXPECT_THROW(generate(g, {{1, 99}}, {}, kEos, kPad), Error);
  EXPECT_THROW(generate(g, {{1}}, {.temperature = 0}, kEos, kPad), Error);
  try {
    generate(g, {std::vector<int64_t>(10, 2)}, {.max_new_tokens = 15}, kEos, kPad);
    ADD_FAILURE() << "expected an error";
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("ctx = 24"), std::string::npos) << msg;
    EXPECT_NE(msg.find("15"), std::string::npos) << msg;
  }
  auto z = generate(g, {{1, 2}}, {.max_new_tokens = 0}, kEos, kPad);
  EXPECT_EQ(z.response_ids.shape(), Shape({1, 0}));
}

// `nanorlhf generate -n 0`: empty responses, the padded prompts as the sequences, nothing finished
// (it used to bind references to elements of the empty response vectors: UBSan).
TEST(Generate, ZeroNewTokensGivesEmptyResponses) {
  GPT g = make_model();
  for (bool greedy : {false, true}) {
    auto z = generate(g, kPrompts, {.max_new_tokens = 0, .greedy = greedy}, kEos, kPad);
    const int64_t B = 4, P = 5;
    EXPECT_EQ(z.prompt_len, P);
    EXPECT_EQ(z.response_ids.shape(), Shape({B, 0}));
    EXPECT_EQ(z.response_mask.shape(), Shape({B, 0}));
    EXPECT_EQ(z.response_logprobs.shape(), Shape({B, 0}));
    EXPECT_TRUE(z.response_ids.to_vector<int64_t>().empty());
    EXPECT_EQ(z.sequences.shape(), Shape({B, P}));
    EXPECT_EQ(z.sequences.to_vector<int64_t>(),
              (std::vector<int64_t>{0, 0, 3, 4, 5, 0, 0, 0, 0, 6, 7, 8, 9, 10, 11, 0, 0, 0, 2, 2}));
    EXPECT_EQ(z.finished, std::vector<bool>(B, false));
  }
}

// `nanorlhf generate -n 9223372036854775807`: a clear error naming max_new_tokens and the room
// left, not a signed overflow in P + max_new_tokens that wraps past the context check.
TEST(Generate, HugeMaxNewTokensIsAClearError) {
  GPT g = make_model();
  for (int64_t n : {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() - 1, int64_t(23)}) {
    EXPECT_TRUE(throws_with([&] { generate(g, {{1, 2}}, {.max_new_tokens = n}, kEos, kPad); },
                            fmt::format("max_new_tokens ({})", n)));
    EXPECT_TRUE(throws_with([&] { generate(g, {{1, 2}}, {.max_new_tokens = n}, kEos, kPad); },
                            "at most 22 new tokens fit"));
  }
  EXPECT_EQ(generate(g, {{1, 2}}, {.max_new_tokens = 22, .greedy = true}, kEos, kPad).prompt_len, 2);
}

}  // namespace
