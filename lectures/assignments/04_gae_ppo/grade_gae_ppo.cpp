// Grader of assignment 04_gae_ppo: GAE against numbers computed by hand and against its closed form
// A_t = sum_l (gamma lambda)^l delta_{t+l}; masked whitening by its statistics; the PPO policy and
// value losses by hand, by which terms carry gradient, and by what the mask leaves out.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "grading.h"
#include "grading_tensor.h"
#include "rlhf/objectives.h"

NR_GRADE_ASSIGNMENT("04_gae_ppo");

namespace {

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using nr_grade::close;
using nr_grade::no_gradient;

Tensor mat(const std::vector<float> &v, int64_t B, int64_t T) { return from_vector(v, {B, T}); }

// No gradient, or an all-zero one.

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_Gae, 30, "generalised advantage estimation");

TEST(Part1_Gae, HandComputedRow) {
  // gamma 1, lambda 0.5, rewards [0, 0, 1], values [0.5, 0.5, 0.5]:
  // delta = [0, 0, 0.5]; A_2 = 0.5, A_1 = 0.25, A_0 = 0.125; R = A + V
  auto g = gae(mat({0, 0, 1}, 1, 3), mat({0.5, 0.5, 0.5}, 1, 3), ones({1, 3}), 1.0, 0.5);
  EXPECT_EQ(g.advantages.shape(), (Shape{1, 3}));
  EXPECT_TRUE(close(g.advantages, {0.125, 0.25, 0.5}, 1e-6));
  EXPECT_TRUE(close(g.returns, {0.625, 0.75, 1.0}, 1e-6));
}

TEST(Part1_Gae, PaddingNeitherLeaksBackNorGetsAdvantage) {
  // mask [1, 1, 0]: V = 0 after the last response token, and the pad's reward 9 and value 7 never
  // enter. delta = [0 + 0.5 - 0.5, 1 + 0 - 0.5] = [0, 0.5]; gamma = lambda = 1: A = [0.5, 0.5]
  auto g = gae(mat({0, 1, 9}, 1, 3), mat({0.5, 0.5, 7}, 1, 3), mat({1, 1, 0}, 1, 3), 1.0, 1.0);
  EXPECT_TRUE(close(g.advantages, {0.5, 0.5, 0}, 1e-6));
  EXPECT_TRUE(close(g.returns, {1, 1, 0}, 1e-6));
}

TEST(Part1_Gae, MatchesTheClosedFormOnABatch) {
  // Rows of different lengths (one empty), gamma 0.99, lambda 0.95:
  // A_t = sum_{l >= 0} (gamma lambda)^l delta_{t+l} over the response, R_t = A_t + V_t.
  const int64_t B = 4, T = 9;
  const int len[B] = {9, 5, 1, 0};
  const double gamma = 0.99, lam = 0.95;
  manual_seed(5);
  auto r = randn({B, T}).to_vector<double>(), v = randn({B, T}).to_vector<double>();
  std::vector<double> m(B * T, 0), adv(B * T, 0), ret(B * T, 0);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < len[b]; ++t) m[b * T + t] = 1;
    for (int t = 0; t < len[b]; ++t) {
      double a = 0, f = 1;
      for (int u = t; u < len[b]; ++u, f *= gamma * lam) {
        const double next_v = u + 1 < len[b] ? v[b * T + u + 1] : 0.0;
        a += f * (r[b * T + u] + gamma * next_v - v[b * T + u]);
      }
      adv[b * T + t] = a;
      ret[b * T + t] = a + v[b * T + t];
    }
  }
  auto g = gae(from_vector(r, {B, T}), from_vector(v, {B, T}), from_vector(m, {B, T}), gamma, lam);
  EXPECT_TRUE(close(g.advantages, adv, 1e-9));
  EXPECT_TRUE(close(g.returns, ret, 1e-9));
}

TEST(Part1_Gae, LambdaZeroIsTheTdErrorAndLambdaOneTheMonteCarloReturn) {
  Tensor r = mat({1, -2, 3, 0.5}, 1, 4), v = mat({0.1, 0.2, 0.3, 0.4}, 1, 4), m = ones({1, 4});
  // lambda 0: A_t = delta_t = r_t + gamma V_{t+1} - V_t (gamma 0.9)
  auto td = gae(r, v, m, 0.9, 0.0);
  EXPECT_TRUE(close(td.advantages, {1 + 0.9 * 0.2 - 0.1, -2 + 0.9 * 0.3 - 0.2, 3 + 0.9 * 0.4 - 0.3, 0.5 - 0.4}, 1e-6));
  // gamma = lambda = 1: R_t is the plain sum of the rewards still to come
  auto mc = gae(r, v, m, 1.0, 1.0);
  EXPECT_TRUE(close(mc.returns, {2.5, 1.5, 3.5, 0.5}, 1e-6));
}

TEST(Part1_Gae, AdvantagesAreConstantsOfTheRightType) {
  // float64 in, float64 out; no gradient flows through the advantages into the value head.
  Tensor r = from_vector<double>({0, 1}, {1, 2}), v = from_vector<double>({0.5, 0.2}, {1, 2});
  v.requires_grad_(true);
  auto g = gae(r, v, ones({1, 2}, {kFloat64}), 1.0, 1.0);
  EXPECT_EQ(g.advantages.dtype(), kFloat64);
  EXPECT_FALSE(g.advantages.requires_grad());
  EXPECT_FALSE(g.returns.requires_grad());
  EXPECT_TRUE(close(g.advantages, {0.5, 0.8}, 1e-12));  // delta = [0 + 0.2 - 0.5, 1 - 0.2]; A_0 = -0.3 + 0.8
}

TEST(Part1_Gae, MismatchedShapesAreAClearError) {
  ASSERT_NO_THROW(gae(zeros({2, 3}), zeros({2, 3}), ones({2, 3}), 1, 1)) << "gae must accept matching [B, T] shapes";
  EXPECT_THROW(gae(zeros({2, 3}), zeros({2, 4}), ones({2, 3}), 1, 1), Error);
  EXPECT_THROW(gae(zeros({6}), zeros({6}), ones({6}), 1, 1), Error);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_MaskedWhiten, 20, "masked whitening");

TEST(Part2_MaskedWhiten, HandComputedValues) {
  // over [1, 2, 3] (the 100 is masked out): mean 2, biased variance 2/3
  Tensor x = mat({1, 2, 3, 100}, 1, 4), m = mat({1, 1, 1, 0}, 1, 4);
  const double s = 1 / std::sqrt(2.0 / 3 + 1e-8);
  EXPECT_TRUE(close(masked_whiten(x, m), {-s, 0, s, 0}, 1e-5));
  EXPECT_TRUE(close(masked_whiten(x, m, false), {2 - s, 2, 2 + s, 0}, 1e-5));
}

TEST(Part2_MaskedWhiten, MaskedEntriesHaveMeanZeroAndVarianceOne) {
  manual_seed(3);
  Tensor x = randn({3, 7}) * 5.0 + 2.0;
  std::vector<float> mv(21, 1);
  mv[6] = mv[13] = mv[19] = mv[20] = 0;
  Tensor m = from_vector(mv, {3, 7});
  auto w = masked_whiten(x, m).to_vector<double>();
  double n = 0, s = 0, ss = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (mv[i] == 0) {
      EXPECT_EQ(w[i], 0.0) << "masked entry " << i << " must be 0";
      continue;
    }
    n += 1, s += w[i], ss += w[i] * w[i];
  }
  EXPECT_NEAR(s / n, 0.0, 1e-5);
  EXPECT_NEAR(ss / n - (s / n) * (s / n), 1.0, 1e-4);
}

TEST(Part2_MaskedWhiten, KeepingTheMeanOnlyRescales) {
  manual_seed(4);
  Tensor x = randn({2, 5}) + 3.0, m = ones({2, 5});
  auto kept = masked_whiten(x, m, false).to_vector<double>(), xs = x.to_vector<double>();
  double mean_kept = 0, mean_x = 0;
  for (size_t i = 0; i < xs.size(); ++i) mean_kept += kept[i] / xs.size(), mean_x += xs[i] / xs.size();
  EXPECT_NEAR(mean_kept, mean_x, 1e-5);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part3_PpoPolicyLoss, 30, "PPO clipped policy loss");

TEST(Part3_PpoPolicyLoss, ExactOnTheFirstMinibatch) {
  // old == new: ratio 1, loss = -mean(A), nothing clipped, approx_kl 0
  Tensor lp = tensor({-1, -2, -0.5}), A = tensor({1, -2, 0.5}), m = ones({3});
  auto out = ppo_policy_loss(lp, lp, A, m, 0.2);
  EXPECT_NEAR(out.loss.item(), -(1 - 2 + 0.5) / 3, 1e-6);
  EXPECT_NEAR(out.clipfrac.item(), 0, 1e-9);
  EXPECT_NEAR(out.approx_kl.item(), 0, 1e-9);
  EXPECT_NEAR(out.ratio_mean.item(), 1, 1e-6);
}

TEST(Part3_PpoPolicyLoss, ClipsThePessimisticSide) {
  // ratio e^{0.5} = 1.6487. A = +1: the clipped term -1.2 is the larger (pessimistic) one;
  // A = -1: max(1.6487, 1.2) = 1.6487 stays unclipped.
  auto c = ppo_policy_loss(tensor({0.5, 0.5}), tensor({0, 0}), tensor({1, -1}), ones({2}), 0.2);
  EXPECT_NEAR(c.loss.item(), (-1.2 + std::exp(0.5)) / 2, 1e-5);
  EXPECT_NEAR(c.clipfrac.item(), 0.5, 1e-6);
  EXPECT_NEAR(c.approx_kl.item(), 0.5 * 0.25, 1e-6);
  EXPECT_NEAR(c.ratio_mean.item(), std::exp(0.5), 1e-5);
}

TEST(Part3_PpoPolicyLoss, GradientFlowsOnlyThroughTheUnclippedTermAndOnlyIntoLogp) {
  Tensor p = tensor({0.5, 0.5}, {.requires_grad = true}), old = tensor({0, 0}, {.requires_grad = true});
  Tensor A = tensor({1, -1}, {.requires_grad = true});
  ppo_policy_loss(p, old, A, ones({2}), 0.2).loss.backward();
  ASSERT_TRUE(p.grad().defined()) << "no gradient reached logp";
  EXPECT_TRUE(close(p.grad(), {0, std::exp(0.5) / 2}, 1e-5));  // d/dlogp (-A rho) / 2 = -A rho / 2
  EXPECT_TRUE(no_gradient(old)) << "old_logp is a constant of the rollout: detach it";
  EXPECT_TRUE(no_gradient(A)) << "the advantages are constants: detach them";
}

TEST(Part3_PpoPolicyLoss, MaskedTokensDoNotCount) {
  // the masked third token has a huge advantage and ratio; it must change nothing
  auto a = ppo_policy_loss(tensor({0.1, -0.1, 3}), tensor({0, 0, 0}), tensor({1, 2, 100}), tensor({1, 1, 0}), 0.2);
  auto b = ppo_policy_loss(tensor({0.1, -0.1}), tensor({0, 0}), tensor({1, 2}), tensor({1, 1}), 0.2);
  EXPECT_NEAR(a.loss.item(), b.loss.item(), 1e-6);
  EXPECT_NEAR(a.clipfrac.item(), b.clipfrac.item(), 1e-6);
  EXPECT_NEAR(a.approx_kl.item(), b.approx_kl.item(), 1e-6);
  EXPECT_NEAR(a.ratio_mean.item(), b.ratio_mean.item(), 1e-6);
}

TEST(Part3_PpoPolicyLoss, NonPositiveClipRangeIsAClearError) {
  Tensor x = tensor({0});
  ASSERT_NO_THROW(ppo_policy_loss(x, x, x, ones({1}), 0.2));
  EXPECT_THROW(ppo_policy_loss(x, x, x, ones({1}), 0.0), Error);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part4_PpoValueLoss, 20, "PPO clipped value loss");

TEST(Part4_PpoValueLoss, HandComputedValues) {
  // V_old 0, V 1, R 2, eps 0.2: unclipped (1 - 2)^2 = 1, clipped (0.2 - 2)^2 = 3.24 -> 0.5 * 3.24
  auto out = ppo_value_loss(tensor({1}), tensor({0}), tensor({2}), ones({1}), 0.2);
  EXPECT_NEAR(out.loss.item(), 1.62, 1e-5);
  EXPECT_NEAR(out.clipfrac.item(), 1, 1e-9);
  // V 0.1 moved less than eps: no clipping, 0.5 (0.1 - 2)^2
  auto in = ppo_value_loss(tensor({0.1}), tensor({0}), tensor({2}), ones({1}), 0.2);
  EXPECT_NEAR(in.loss.item(), 0.5 * 1.9 * 1.9, 1e-5);
  EXPECT_NEAR(in.clipfrac.item(), 0, 1e-9);
}

TEST(Part4_PpoValueLoss, GradientOnlyWhereTheUnclippedTermWins) {
  // token 0: V 0.1 (unclipped): d/dV 0.5 (V - R)^2 / 2 = (0.1 - 2) / 2
  // token 1: V 1 (clipped term wins; it does not depend on V): gradient 0
  Tensor v = tensor({0.1, 1}, {.requires_grad = true}), R = tensor({2, 2}, {.requires_grad = true});
  ppo_value_loss(v, zeros({2}), R, ones({2}), 0.2).loss.backward();
  ASSERT_TRUE(v.grad().defined()) << "no gradient reached the values";
  EXPECT_TRUE(close(v.grad(), {(0.1 - 2) / 2, 0}, 1e-5));
  EXPECT_TRUE(no_gradient(R)) << "the returns are targets: detach them";
}

TEST(Part4_PpoValueLoss, MaskedTokensDoNotCount) {
  auto a = ppo_value_loss(tensor({0.1, 50}), tensor({0, 0}), tensor({2, -50}), tensor({1, 0}), 0.2);
  EXPECT_NEAR(a.loss.item(), 0.5 * 1.9 * 1.9, 1e-5);
  EXPECT_NEAR(a.clipfrac.item(), 0, 1e-9);
}

}  // namespace
