// Grader of assignment 07_grpo: the group-relative advantage under each scale_rewards and the GRPO
// loss in its four normalisations against numbers computed by hand, clip-higher and the clip
// ratios, the k3 term, finite-difference gradients, and the frozen old and reference log-probs.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/gradcheck.h"
#include "grading.h"
#include "grading_tensor.h"
#include "rlhf/objectives.h"

NR_GRADE_ASSIGNMENT("07_grpo");

namespace {

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using nr_grade::close;
using nr_grade::no_gradient;

Tensor t2(std::vector<double> v, int64_t rows) {
  int64_t cols = (int64_t)v.size() / rows;
  return from_vector<double>(v, {rows, cols}).to(kFloat32);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_GrpoAdvantages, 40, "group-relative advantages");

TEST(Part1_GrpoAdvantages, GroupScale) {
  // [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3); [2, 2, 2, 2]: std 0 -> advantages 0.
  auto g = grpo_advantages(tensor({1, 0, 0, 1, 2, 2, 2, 2}), 4, "group");
  const double s = std::sqrt(1.0 / 3), a = 0.5 / (s + 1e-4);
  EXPECT_TRUE(close(g.advantages, {a, -a, -a, a, 0, 0, 0, 0}, 1e-5));
  EXPECT_TRUE(close(g.group_std, {s, s, s, s, 0, 0, 0, 0}, 1e-5));
}

TEST(Part1_GrpoAdvantages, BatchScaleKeepsTheGroupMean) {
  // std of all 8 rewards: sqrt(5.5 / 7)
  const double s = std::sqrt(5.5 / 7), a = 0.5 / (s + 1e-4);
  EXPECT_TRUE(close(grpo_advantages(tensor({1, 0, 0, 1, 2, 2, 2, 2}), 4, "batch").advantages, {a, -a, -a, a, 0, 0, 0, 0}, 1e-5));
}

TEST(Part1_GrpoAdvantages, NoScale) {
  EXPECT_TRUE(close(grpo_advantages(tensor({3, 1, 5, 5}), 2, "none").advantages, {1, -1, 0, 0}, 1e-6));
}

TEST(Part1_GrpoAdvantages, EachGroupSumsToZero) {
  auto g = grpo_advantages(tensor({0.3, -1.2, 2.5, 0.7, 0.1, 0.9}), 3, "group");
  std::vector<double> a = g.advantages.to_vector<double>();
  EXPECT_NEAR(a[0] + a[1] + a[2], 0, 1e-5);
  EXPECT_NEAR(a[3] + a[4] + a[5], 0, 1e-5);
}

TEST(Part1_GrpoAdvantages, BadInputsAreClearErrors) {
  ASSERT_NO_THROW(grpo_advantages(tensor({1, 2}), 2, "group")) << "valid arguments must not throw";
  EXPECT_THROW(grpo_advantages(tensor({1, 2, 3}), 2, "group"), Error) << "G must divide the rewards";
  EXPECT_THROW(grpo_advantages(tensor({1, 2}), 1, "group"), Error) << "G must be >= 2";
  EXPECT_THROW(grpo_advantages(tensor({1, 2}), 2, "mean"), Error) << "unknown scale_rewards";
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_GrpoLoss, 60, "GRPO loss");

TEST(Part2_GrpoLoss, EachNormalisation) {
  // ratio 1, beta 0: l = -A. Row 0 (A = 1) has 2 tokens, row 1 (A = -3) has 1; masked sum = 1.
  Tensor lp = t2({-1, -2, -7, -0.5, -9, -9}, 2), m = t2({1, 1, 0, 1, 0, 0}, 2), A = tensor({1, -3});
  auto loss = [&](const char *type, double items = 0) {
    return grpo_loss(lp, lp, Tensor(), A, m, 0.2, 0.2, 0.0, type, 4, items).loss;
  };
  EXPECT_TRUE(close(loss("grpo"), {1.0}, 1e-5));
  EXPECT_TRUE(close(loss("bnpo"), {1.0 / 3}, 1e-5));
  EXPECT_TRUE(close(loss("dapo", 6), {1.0 / 6}, 1e-5));
  EXPECT_TRUE(close(loss("dapo"), {1.0 / 3}, 1e-5));
  EXPECT_TRUE(close(loss("dr_grpo"), {1.0 / 8}, 1e-5));
}

TEST(Part2_GrpoLoss, ClipHigherAndTheClipRatios) {
  Tensor lp = t2({0.5, 0.5, -0.5, -0.5}, 4), old = t2({0, 0, 0, 0}, 4), m = t2({1, 1, 1, 1}, 4);
  auto out = grpo_loss(lp, old, Tensor(), tensor({1, -1, -1, 1}), m, 0.2, 0.28, 0.0, "bnpo", 1);
  const double e = std::exp(0.5), ie = std::exp(-0.5);
  EXPECT_TRUE(close(out.loss, {(-1.28 + e + 0.8 - ie) / 4}, 1e-5));
  EXPECT_TRUE(close(out.clip_high, {0.25}, 1e-5));
  EXPECT_TRUE(close(out.clip_low, {0.25}, 1e-5));
  EXPECT_TRUE(close(out.clip_region, {0.5}, 1e-5));
}

TEST(Part2_GrpoLoss, TheK3Term) {
  Tensor lp = t2({-1, -1}, 1), ref = t2({-1.5, -1.5}, 1), m = t2({1, 1}, 1);
  const double k3 = std::exp(-0.5) - 0.5;
  auto out = grpo_loss(lp, lp, ref, tensor({0}), m, 0.2, 0.2, 0.04, "grpo", 2);
  EXPECT_TRUE(close(out.kl, {k3}, 1e-5));
  EXPECT_TRUE(close(out.loss, {0.04 * k3}, 1e-5));
}

TEST(Part2_GrpoLoss, GradientMatchesFiniteDifferences) {
  manual_seed(7);
  Tensor old = (rand({3, 4}, {kFloat64}) * 2.0 - 3.0).detach(), ref = (rand({3, 4}, {kFloat64}) * 2.0 - 3.0).detach();
  Tensor m = from_vector<double>({1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1}, {3, 4});
  Tensor A = from_vector<double>({0.7, -1.1, 0.3}, {3});
  for (const char *type : {"grpo", "bnpo", "dr_grpo", "dapo"}) {
    Tensor lp = (old + rand({3, 4}, {kFloat64}) * 0.2 - 0.1).detach().requires_grad_(true);
    auto r = autograd::gradcheck(
        [&](const std::vector<Tensor> &in) { return grpo_loss(in[0], old, ref, A, m, 0.2, 0.28, 0.1, type, 4, 0).loss; },
        {lp});
    EXPECT_TRUE(r.ok) << type << ": " << r.message;
  }
}

TEST(Part2_GrpoLoss, OldAndReferenceLogProbsAreFrozen) {
  Tensor lp = t2({-1, -2}, 1).requires_grad_(true), old = t2({-1.1, -1.9}, 1).requires_grad_(true);
  Tensor ref = t2({-1.5, -1.5}, 1).requires_grad_(true), m = t2({1, 1}, 1);
  auto out = grpo_loss(lp, old, ref, tensor({1.0}), m, 0.2, 0.2, 0.1, "grpo", 2, 0);
  EXPECT_FALSE(out.kl.requires_grad()) << "the metrics are for logging";
  out.loss.backward();
  ASSERT_TRUE(lp.grad().defined()) << "no gradient reached the policy's log-probs";
  EXPECT_TRUE(no_gradient(old)) << "pi_old is the sampling policy: detach it";
  EXPECT_TRUE(no_gradient(ref)) << "the reference is frozen: detach it";
}

TEST(Part2_GrpoLoss, BadInputsAreClearErrors) {
  Tensor lp = t2({0, 0}, 1), m = t2({1, 1}, 1);
  ASSERT_NO_THROW(grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.2, 0.2, 0, "grpo", 2, 0)) << "valid arguments";
  EXPECT_THROW(grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.0, 0.2, 0, "grpo", 2, 0), Error) << "epsilon <= 0";
  EXPECT_THROW(grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.2, 0.2, 0, "sum", 2, 0), Error) << "unknown loss_type";
  EXPECT_THROW(grpo_loss(lp, lp, Tensor(), tensor({1, 2}), m, 0.2, 0.2, 0, "grpo", 2, 0), Error) << "advantages of 2 rows";
}

}  // namespace
