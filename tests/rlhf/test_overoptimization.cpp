// The over-optimisation study's equations on hand numbers: the fits recover known alpha and beta,
// the peaks, the best-of-n KL, the best-of-n pick, the unbiased estimator against enumeration, the
// proxy rising with n; and the evaluation's reward-model score (the proxy of the RL curve).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/evaluation.h"
#include "rlhf/objectives.h"
#include "rlhf/overoptimization_fit.h"
#include "rlhf/trainers/overoptimization.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

// The study's x for best-of-n is best_of_n_kl (rlhf/objectives.h, tested with `compare`): at n = 256.
TEST(Overoptimization, BestOfNKlIsLogNMinusNMinusOneOverN) {
  EXPECT_EQ(best_of_n_kl(1), 0.0);
  EXPECT_NEAR(best_of_n_kl(2), std::log(2.0) - 0.5, 1e-15);
  EXPECT_NEAR(best_of_n_kl(256), std::log(256.0) - 255.0 / 256.0, 1e-12);
}

// Points exactly on R = d (1.5 - 0.5 d): the fit gives alpha 1.5, beta 0.5 and the peak 1.5 / 1 = 1.5.
TEST(Overoptimization, BonFitRecoversAlphaBetaAndThePeak) {
  std::vector<double> d = {0, 0.5, 1, 1.5, 2, 3}, R;
  for (double x : d) R.push_back(x * (1.5 - 0.5 * x));
  OveroptFit f = fit_bon(d, R);
  EXPECT_NEAR(f.alpha, 1.5, 1e-12);
  EXPECT_NEAR(f.beta, 0.5, 1e-12);
  EXPECT_NEAR(f.peak_d, 1.5, 1e-12);
  EXPECT_NEAR(gold_bon(2.0, 1.5, 0.5), 1.0, 1e-15);  // 2 (1.5 - 1)
  EXPECT_EQ(peak_bon(1, 0), INFINITY);                // no curvature: no peak
}

// Points on R = d (1 - 0.5 log d): alpha 1, beta 0.5, peak exp(1 / 0.5 - 1) = e.
TEST(Overoptimization, RlFitRecoversAlphaBetaAndThePeak) {
  std::vector<double> d = {0, 0.25, 1, 2, 4, 8}, R;
  for (double x : d) R.push_back(x > 0 ? x * (1 - 0.5 * std::log(x)) : 0.0);
  OveroptFit f = fit_rl(d, R);
  EXPECT_NEAR(f.alpha, 1.0, 1e-12);
  EXPECT_NEAR(f.beta, 0.5, 1e-12);
  EXPECT_NEAR(f.peak_d, std::exp(1.0), 1e-12);
  EXPECT_NEAR(gold_rl(std::exp(1.0), 1.0, 0.5), std::exp(1.0) * 0.5, 1e-12);
  EXPECT_EQ(gold_rl(0, 1.0, 0.5), 0.0);  // d log d -> 0
  // One distinct d > 0 cannot fix two parameters.
  EXPECT_TRUE(nr_test::throws_with([] { fit_rl({0, 1, 1}, {0, 1, 1}); }, "do not determine alpha and beta"));
  EXPECT_TRUE(nr_test::throws_with([] { fit_bon({0, -1}, {0, 1}); }, "must be finite and >= 0"));
}

TEST(Overoptimization, BestOfNPicksTheHighestProxyAmongTheFirstN) {
  const std::vector<double> proxy = {0.1, 0.7, -0.2, 0.9, 0.7};
  EXPECT_EQ(best_of_n(proxy, 1), 0u);
  EXPECT_EQ(best_of_n(proxy, 2), 1u);
  EXPECT_EQ(best_of_n(proxy, 3), 1u);
  EXPECT_EQ(best_of_n(proxy, 4), 3u);
  EXPECT_EQ(best_of_n(proxy, 5), 3u);
  EXPECT_TRUE(nr_test::throws_with([&] { best_of_n(proxy, 6); }, "n = 6 of 5"));
}

// The unbiased estimator equals the mean over all C(N, n) subsets of the gold of each subset's pick.
TEST(Overoptimization, UnbiasedBestOfNIsTheMeanOverEverySubset) {
  const std::vector<double> proxy = {0.3, -1.0, 2.0, 0.5, 1.2, -0.4, 0.9, 0.1};
  const std::vector<double> gold = {1, 2, -3, 0.5, 2.5, 1, 0, 3};
  const int N = 8;
  for (int n : {1, 2, 4, 8}) {
    double sum = 0, count = 0;
    for (int mask = 0; mask < (1 << N); ++mask) {
      if (__builtin_popcount(mask) != n) continue;
      int best = -1;
      for (int i = 0; i < N; ++i)
        if (mask >> i & 1 && (best < 0 || proxy[i] > proxy[best])) best = i;
      sum += gold[best], count += 1;
    }
    std::vector<double> w = bon_pick_weights(proxy, n);
    double est = 0, wsum = 0;
    for (int i = 0; i < N; ++i) est += w[i] * gold[i], wsum += w[i];
    EXPECT_NEAR(wsum, 1.0, 1e-12) << n;
    EXPECT_NEAR(est, sum / count, 1e-12) << n;
  }
  // n = 1 is the plain mean; n = N the single top pick (gold of proxy 2.0 is -3).
  EXPECT_NEAR(best_of_n_curve(proxy, gold, "unbiased")[0].gold, 7.0 / 8.0, 1e-12);
  EXPECT_NEAR(best_of_n_curve(proxy, gold, "unbiased")[3].gold, -3.0, 1e-12);
}

// The expected best proxy of n draws never falls as n grows, whichever estimator.
TEST(Overoptimization, ProxyOfBestOfNIsNonDecreasingInN) {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> z;
  std::vector<double> proxy(256), gold(256);
  for (size_t i = 0; i < proxy.size(); ++i) proxy[i] = z(rng), gold[i] = z(rng);
  for (const char *est : {"unbiased", "nested"}) {
    std::vector<BonRow> rows = best_of_n_curve(proxy, gold, est);
    ASSERT_EQ(rows.size(), 9u);  // n = 1, 2, 4, ..., 256
    EXPECT_EQ(rows.back().n, 256);
    for (size_t i = 1; i < rows.size(); ++i) EXPECT_GE(rows[i].proxy, rows[i - 1].proxy - 1e-12) << est << " " << i;
    EXPECT_EQ(rows.back().proxy, *std::max_element(proxy.begin(), proxy.end()));
  }
}

TEST(Overoptimization, BadKeysNameThemselves) {
  OveroptimizationConfig c;
  c.rm_pairs = "250,,4000";
  EXPECT_TRUE(nr_test::throws_with([&] { c.validate(); }, "rm_pairs must be a comma list"));
  c.rm_pairs = "250,1000";
  EXPECT_EQ(c.pair_counts(), (std::vector<int64_t>{250, 1000}));
  c.bon_max_n = 100;
  EXPECT_TRUE(nr_test::throws_with([&] { c.validate(); }, "bon_max_n must be a power of two"));
}

// The RL curve's proxy: evaluate() with a reward model scores both sides with it; a model against
// itself gets the same proxy as its reference, and the mean is that of the rows.
TEST(Overoptimization, EvaluationReportsTheRewardModelScore) {
  nn::Tokenizer tok;
  WorldConfig wc;
  wc.n_pretrain_docs = 10, wc.n_sft = 5, wc.n_prompts = 10, wc.n_eval_prompts = 6;
  World world = make_world(wc);
  Oracle oracle(world.kb);
  manual_seed(1);
  const nn::GPTConfig cfg{.vocab = tok.vocab_size(), .ctx = 96, .d_model = 32, .n_layer = 2, .n_head = 2};
  nn::GPT gpt(cfg);
  nn::ScalarModel rm(cfg);
  const EvalOptions o{.max_new_tokens = 12, .temperature = 1.0, .seed = 4, .batch = 3};
  EvalResult without = evaluate(gpt, gpt, tok, oracle, world.eval_prompts, o);
  EXPECT_TRUE(std::isnan(without.rm_score));
  EXPECT_EQ(eval_metrics(without).count("eval/rm_score"), 0u);
  EvalResult with = evaluate(gpt, gpt, tok, oracle, world.eval_prompts, o, &rm);
  double mean = 0;
  for (const auto &row : with.rows) mean += row.rm_score / double(with.rows.size());
  EXPECT_NEAR(with.rm_score, mean, 1e-9);
  EXPECT_EQ(with.rm_score, with.ref_rm_score);
  EXPECT_EQ(with.oracle_reward, without.oracle_reward);  // the same samples either way
  EXPECT_EQ(eval_metrics(with).at("eval/rm_score"), with.rm_score);
}
