// GRPO's objectives against numbers worked out by hand (in the comments): the group-relative
// advantage under each scale_rewards, the four loss normalisations, clip-higher, the k3 term, and
// gradchecks in float64.
#include <cmath>

#include "rlhf/objectives.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_test;

namespace {

TEST(GrpoObjectives, AdvantagesByHandForEachScale) {
  // Two groups of G = 4: [1, 0, 0, 1] (mean 0.5, unbiased std sqrt(1/3)) and [2, 2, 2, 2] (std 0).
  Tensor r = tensor({1, 0, 0, 1, 2, 2, 2, 2});
  const double sg = std::sqrt(1.0 / 3), a = 0.5 / (sg + 1e-4);
  auto g = grpo_advantages(r, 4, "group");
  EXPECT_TRUE(allclose(g.advantages, {a, -a, -a, a, 0, 0, 0, 0}, {.atol = 1e-5, .rtol = 1e-5}));
  EXPECT_TRUE(allclose(g.group_std, {sg, sg, sg, sg, 0, 0, 0, 0}, {.atol = 1e-6, .rtol = 1e-6}));
  // batch: the std of all 8 rewards, sqrt(5.5 / 7); the mean stays the group's.
  const double sb = std::sqrt(5.5 / 7), b = 0.5 / (sb + 1e-4);
  EXPECT_TRUE(allclose(grpo_advantages(r, 4, "batch").advantages, {b, -b, -b, b, 0, 0, 0, 0}, {.atol = 1e-5, .rtol = 1e-5}));
  // none (Dr. GRPO): the centred reward.
  EXPECT_TRUE(allclose(grpo_advantages(r, 4, "none").advantages, {0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0}, {.atol = 1e-6, .rtol = 0}));
}

TEST(GrpoObjectives, EachLossTypeNormalisesAsWrittenOut) {
  // ratio 1 (logp == old_logp), beta 0: the per-token loss is -A. Rows of 2 and 1 completion tokens.
  //   row 0: A = 1 -> -1, -1;  row 1: A = -3 -> 3.   Masked sum = 1.
  Tensor lp = tensor({-1, -2, -7, -0.5, -9, -9}).view({2, 3});
  Tensor m = tensor({1, 1, 0, 1, 0, 0}).view({2, 3}), A = tensor({1, -3});
  auto loss = [&](const std::string &type, double items = 0) {
    return grpo_loss(lp, lp, Tensor(), A, m, 0.2, 0.2, 0.0, type, 4, items).loss.item();
  };
  EXPECT_NEAR(loss("grpo"), (-1 + 3) / 2.0, 1e-6);   // per sequence: mean(-1, 3)
  EXPECT_NEAR(loss("bnpo"), 1.0 / 3, 1e-6);          // per token of the batch: 1 / 3 tokens
  EXPECT_NEAR(loss("dapo", 6), 1.0 / 6, 1e-6);       // per token of a global batch of 6 tokens
  EXPECT_NEAR(loss("dapo"), 1.0 / 3, 1e-6);          // one batch is the global batch: bnpo
  EXPECT_NEAR(loss("dr_grpo"), 1.0 / (2 * 4), 1e-6); // B x max_completion_length
}

TEST(GrpoObjectives, ClipHigherAndTheClipRatios) {
  // Four tokens, old log-prob 0. ratio e^{0.5} = 1.6487 with A = +1: clipped at 1 + 0.28 (high);
  // e^{0.5} with A = -1: unclipped, loss 1.6487; e^{-0.5} = 0.6065 with A = -1: clipped at 1 - 0.2
  // (low), loss 0.8; e^{-0.5} with A = +1: unclipped, loss -0.6065.
  Tensor lp = tensor({0.5, 0.5, -0.5, -0.5}).view({4, 1}), old = zeros({4, 1}), m = ones({4, 1});
  Tensor A = tensor({1, -1, -1, 1});
  auto out = grpo_loss(lp, old, Tensor(), A, m, 0.2, 0.28, 0.0, "bnpo", 1);
  const double e = std::exp(0.5), ie = std::exp(-0.5);
  EXPECT_NEAR(out.loss.item(), (-1.28 + e + 0.8 - ie) / 4, 1e-5);
  EXPECT_NEAR(out.clip_high.item(), 0.25, 1e-6);
  EXPECT_NEAR(out.clip_low.item(), 0.25, 1e-6);
  EXPECT_NEAR(out.clip_region.item(), 0.5, 1e-6);
  // With epsilon_high = epsilon = 0.2 the first token clips at 1.2 instead.
  EXPECT_NEAR(grpo_loss(lp, old, Tensor(), A, m, 0.2, 0.2, 0.0, "bnpo", 1).loss.item(), (-1.2 + e + 0.8 - ie) / 4, 1e-5);
}

TEST(GrpoObjectives, TheK3TermAndTheKlMetric) {
  // logp -1 against ref -1.5: log r = -0.5, k3 = e^{-0.5} + 0.5 - 1 = 0.106531; ratio 1, A = 0.
  Tensor lp = tensor({-1, -1}).view({1, 2}), ref = tensor({-1.5, -1.5}).view({1, 2}), m = ones({1, 2});
  const double k3 = std::exp(-0.5) - 0.5;
  auto out = grpo_loss(lp, lp, ref, tensor({0}), m, 0.2, 0.2, 0.04, "grpo", 2);
  EXPECT_NEAR(out.kl.item(), k3, 1e-6);
  EXPECT_NEAR(out.loss.item(), 0.04 * k3, 1e-6);
  // beta 0: the kl is still measured, the loss leaves it out.
  EXPECT_NEAR(grpo_loss(lp, lp, ref, tensor({0}), m, 0.2, 0.2, 0.0, "grpo", 2).loss.item(), 0.0, 1e-7);
}

TEST(GrpoObjectives, GradcheckEveryLossTypeInFloat64) {
  Tensor old = rand64({3, 4}, -1, 1, false), ref = rand64({3, 4}, -1, 1, false);
  Tensor m = from_vector<double>({1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1}, {3, 4});
  Tensor A = from_vector<double>({0.7, -1.1, 0.3}, {3});
  for (const char *type : {"grpo", "bnpo", "dr_grpo", "dapo"}) {
    // Log-probs near the old ones, so most ratios sit inside the clip range and the gradient is not 0.
    Tensor lp = (old + rand64({3, 4}, -0.1, 0.1, false)).detach().requires_grad_(true);
    auto r = autograd::gradcheck(
        [&](const std::vector<Tensor> &in) { return grpo_loss(in[0], old, ref, A, m, 0.2, 0.28, 0.1, type, 4).loss; },
        {lp});
    EXPECT_TRUE(r.ok) << type << ": " << r.message;
  }
}

TEST(GrpoObjectives, BadInputsAreClearErrors) {
  EXPECT_TRUE(throws_with([&] { grpo_advantages(tensor({1, 2, 3}), 2, "group"); }, "num_generations must be >= 2 and divide the 3"));
  EXPECT_TRUE(throws_with([&] { grpo_advantages(tensor({1, 2}), 1, "group"); }, "num_generations must be >= 2"));
  EXPECT_TRUE(throws_with([&] { grpo_advantages(tensor({1, 2}), 2, "mean"); }, "unknown scale_rewards 'mean'; valid: group, batch, none"));
  Tensor lp = zeros({1, 2}), m = ones({1, 2});
  EXPECT_TRUE(throws_with([&] { grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.0, 0.2, 0, "grpo", 2); }, "epsilon and epsilon_high must be > 0"));
  EXPECT_TRUE(throws_with([&] { grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.2, 0.2, 0, "sum", 2); }, "unknown loss_type 'sum'"));
  EXPECT_TRUE(throws_with([&] { grpo_loss(lp, lp, Tensor(), tensor({1, 2}), m, 0.2, 0.2, 0, "grpo", 2); }, "advantages [2] must be [B] for logp [1, 2]"));
  EXPECT_TRUE(throws_with([&] { grpo_loss(lp, lp, Tensor(), tensor({1}), m, 0.2, 0.2, 0.1, "grpo", 2); }, "beta 0.1 needs ref_logp"));
}

}  // namespace
