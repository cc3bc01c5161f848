// Grader of assignment 05_dpo: the DPO loss (and cDPO's label smoothing) and SimPO against numbers
// computed by hand, finite-difference gradients, the frozen reference model, the detached implicit
// rewards, and the properties that make them what they are (DPO only sees log-ratio differences;
// SimPO only sees per-token averages).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "grading.h"
#include "grading_tensor.h"
#include "rlhf/objectives.h"

NR_GRADE_ASSIGNMENT("05_dpo");

namespace {

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using nr_grade::close;
using nr_grade::no_gradient;

double sig(double x) { return 1 / (1 + std::exp(-x)); }

Tensor rand64(const Shape &s, uint64_t seed, bool grad = true) {
  manual_seed(seed);
  Tensor t = (rand(s, {kFloat64}) * 4.0 - 6.0).detach();  // log-probs in [-6, -2)
  if (grad) t.requires_grad_(true);
  return t;
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_DpoLoss, 60, "DPO loss");

TEST(Part1_DpoLoss, HandComputedLossAndRewards) {
  // lc - rlc = 1, lr - rlr = -1 -> h = 2; beta 0.1: loss = -log s(0.2); rewards 0.1 and -0.1
  auto d = dpo_loss(tensor({-3}), tensor({-6}), tensor({-4}), tensor({-5}), 0.1);
  EXPECT_NEAR(d.loss.item(), -std::log(sig(0.2)), 1e-6);
  EXPECT_TRUE(close(d.chosen_rewards, {0.1}, 1e-6));
  EXPECT_TRUE(close(d.rejected_rewards, {-0.1}, 1e-6));
}

TEST(Part1_DpoLoss, MeanOverTheBatchWithPerPairRewards) {
  // pair 0 as above (h = 2), pair 1: lc - rlc = -0.5, lr - rlr = 0.5 -> h = -1; beta 0.5
  auto d = dpo_loss(tensor({-3, -2}), tensor({-6, -1.5}), tensor({-4, -1.5}), tensor({-5, -2}), 0.5);
  EXPECT_EQ(d.loss.numel(), 1) << "the loss is one number: a mean over the batch";
  EXPECT_NEAR(d.loss.item(), -(std::log(sig(1.0)) + std::log(sig(-0.5))) / 2, 1e-6);
  EXPECT_TRUE(close(d.chosen_rewards, {0.5, -0.25}, 1e-6));
  EXPECT_TRUE(close(d.rejected_rewards, {-0.5, 0.25}, 1e-6));
}

TEST(Part1_DpoLoss, LabelSmoothing) {
  // cDPO eps 0.1: -(0.9 log s(0.2) + 0.1 log s(-0.2))
  auto d = dpo_loss(tensor({-3}), tensor({-6}), tensor({-4}), tensor({-5}), 0.1, 0.1);
  EXPECT_NEAR(d.loss.item(), -(0.9 * std::log(sig(0.2)) + 0.1 * std::log(sig(-0.2))), 1e-6);
}

TEST(Part1_DpoLoss, OnlyTheLogRatiosMatter) {
  // Adding the same constant to a response's policy and reference log-prob changes nothing.
  auto a = dpo_loss(tensor({-3, -1}), tensor({-6, -2}), tensor({-4, -1}), tensor({-5, -3}), 0.3);
  auto b = dpo_loss(tensor({-13, -1}), tensor({-7, -12}), tensor({-14, -1}), tensor({-6, -13}), 0.3);
  EXPECT_NEAR(a.loss.item(), b.loss.item(), 1e-5);
  // The policy equal to the reference: h = 0, loss log 2.
  EXPECT_NEAR(dpo_loss(tensor({-3}), tensor({-6}), tensor({-3}), tensor({-6}), 0.3).loss.item(), std::log(2.0), 1e-6);
}

TEST(Part1_DpoLoss, GradientMatchesFiniteDifferences) {
  Tensor a = rand64({3}, 1), b = rand64({3}, 2), ra = rand64({3}, 3, false), rb = rand64({3}, 4, false);
  auto r = autograd::gradcheck(
      [&](const std::vector<Tensor> &in) { return dpo_loss(in[0], in[1], ra, rb, 0.5, 0.1).loss; }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Part1_DpoLoss, TheReferenceIsFrozenAndTheRewardsDetached) {
  Tensor lc = rand64({2}, 5), lr = rand64({2}, 6), rlc = rand64({2}, 7), rlr = rand64({2}, 8);
  auto d = dpo_loss(lc, lr, rlc, rlr, 0.1);
  EXPECT_FALSE(d.chosen_rewards.requires_grad()) << "the implicit rewards are for logging: detach them";
  EXPECT_FALSE(d.rejected_rewards.requires_grad());
  d.loss.backward();
  ASSERT_TRUE(lc.grad().defined() && lr.grad().defined()) << "no gradient reached the policy's log-probs";
  EXPECT_TRUE(no_gradient(rlc)) << "the reference model is frozen: detach its log-probs";
  EXPECT_TRUE(no_gradient(rlr));
}

TEST(Part1_DpoLoss, BadHyperparametersAreClearErrors) {
  Tensor x = tensor({-1});
  ASSERT_NO_THROW(dpo_loss(x, x, x, x, 0.1, 0.2)) << "valid arguments must not throw";
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.0), Error) << "beta must be > 0";
  EXPECT_THROW(dpo_loss(x, x, x, x, -0.1), Error);
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, 0.5), Error) << "label_smoothing must be in [0, 0.5)";
  EXPECT_THROW(dpo_loss(x, x, x, x, 0.1, -0.1), Error);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_SimpoLoss, 40, "SimPO loss");

TEST(Part2_SimpoLoss, HandComputedLossAndRewards) {
  // beta 2, gamma 0.5: r_c = 2/3 * -3 = -2, r_r = 2/2 * -6 = -6; -log s(-2 + 6 - 0.5) = -log s(3.5)
  auto s = simpo_loss(tensor({-3}), tensor({3}), tensor({-6}), tensor({2}), 2.0, 0.5);
  EXPECT_NEAR(s.loss.item(), -std::log(sig(3.5)), 1e-6);
  EXPECT_TRUE(close(s.chosen_rewards, {-2}, 1e-6));
  EXPECT_TRUE(close(s.rejected_rewards, {-6}, 1e-6));
  EXPECT_FALSE(s.chosen_rewards.requires_grad());
}

TEST(Part2_SimpoLoss, LengthNormalised) {
  // Twice the tokens with twice the summed log-prob: the same per-token average, the same loss.
  auto a = simpo_loss(tensor({-3, -8}), tensor({3, 4}), tensor({-6, -2}), tensor({2, 5}), 2.5, 1.0);
  auto b = simpo_loss(tensor({-6, -16}), tensor({6, 8}), tensor({-12, -4}), tensor({4, 10}), 2.5, 1.0);
  EXPECT_NEAR(a.loss.item(), b.loss.item(), 1e-6);
  EXPECT_NEAR(a.loss.item(), -(std::log(sig(2.5 * (-1 + 3) - 1)) + std::log(sig(2.5 * (-2 + 0.4) - 1))) / 2, 1e-5);
}

TEST(Part2_SimpoLoss, TheMarginGammaShiftsTheLogit) {
  auto s = simpo_loss(tensor({-2}), tensor({2}), tensor({-2}), tensor({2}), 1.0, 0.0);
  EXPECT_NEAR(s.loss.item(), std::log(2.0), 1e-6);
  auto g = simpo_loss(tensor({-2}), tensor({2}), tensor({-2}), tensor({2}), 1.0, 1.5);
  EXPECT_NEAR(g.loss.item(), -std::log(sig(-1.5)), 1e-6);
}

TEST(Part2_SimpoLoss, GradientMatchesFiniteDifferences) {
  Tensor a = rand64({3}, 11), b = rand64({3}, 12);
  Tensor la = from_vector<double>({3, 1, 7}, {3}), lb = from_vector<double>({2, 5, 4}, {3});
  auto r = autograd::gradcheck(
      [&](const std::vector<Tensor> &in) { return simpo_loss(in[0], la, in[1], lb, 2.0, 0.5).loss; }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Part2_SimpoLoss, BadBetaIsAClearError) {
  Tensor x = tensor({-1}), n = tensor({1});
  ASSERT_NO_THROW(simpo_loss(x, n, x, n, 2.0, 0.5)) << "valid arguments must not throw";
  EXPECT_THROW(simpo_loss(x, n, x, n, 0.0, 0.5), Error);
}

}  // namespace
