// Grader of assignment 03_reward_model: the Bradley-Terry loss and probability against numbers
// computed by hand, finite-difference gradients and the properties of the model; then a tiny reward
// model (a linear scorer on synthetic features) trained with the student's loss must learn to rank
// chosen responses over rejected ones.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "grading.h"
#include "rlhf/objectives.h"

NR_GRADE_ASSIGNMENT("03_reward_model");

namespace {

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

double sig(double x) { return 1 / (1 + std::exp(-x)); }

::testing::AssertionResult close(const Tensor &got, const std::vector<double> &want, double tol) {
  std::vector<double> g = got.to_vector<double>();
  if (g.size() != want.size()) return ::testing::AssertionFailure() << "got " << g.size() << " values, expected " << want.size();
  for (size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": got " << g[i] << ", expected " << want[i];
  return ::testing::AssertionSuccess();
}

Tensor rand64(const Shape &s, uint64_t seed) {
  manual_seed(seed);
  return (rand(s, {kFloat64}) * 4.0 - 2.0).detach().requires_grad_(true);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_BradleyTerryLoss, 40, "Bradley-Terry loss");

TEST(Part1_BradleyTerryLoss, HandComputedValues) {
  // r_w = [2, 0], r_l = [1, 1]: -(log s(1) + log s(-1)) / 2
  Tensor rw = tensor({2, 0}), rl = tensor({1, 1});
  Tensor loss = bradley_terry_loss(rw, rl);
  EXPECT_EQ(loss.numel(), 1) << "the loss is one number: a mean over the batch";
  EXPECT_NEAR(loss.item(), -(std::log(sig(1)) + std::log(sig(-1))) / 2, 1e-6);
  // equal rewards: log 2, whatever the rewards are
  EXPECT_NEAR(bradley_terry_loss(tensor({3, -7}), tensor({3, -7})).item(), std::log(2.0), 1e-6);
}

TEST(Part1_BradleyTerryLoss, MarginShiftsTheLogit) {
  // margin m = 0.5: -(log s(0.5) + log s(-1.5)) / 2
  Tensor rw = tensor({2, 0}), rl = tensor({1, 1});
  EXPECT_NEAR(bradley_terry_loss(rw, rl, 0.5).item(), -(std::log(sig(0.5)) + std::log(sig(-1.5))) / 2, 1e-6);
}

TEST(Part1_BradleyTerryLoss, StableForLargeGaps) {
  // log(sigmoid(-200)) underflows to log(0) = -inf when computed naively; the answer is -200.
  EXPECT_NEAR(bradley_terry_loss(tensor({-100}), tensor({100})).item(), 200, 1e-3);
  const double tiny = bradley_terry_loss(tensor({100}), tensor({-100})).item();
  EXPECT_TRUE(std::isfinite(tiny) && tiny >= 0 && tiny < 1e-6) << "got " << tiny;
}

TEST(Part1_BradleyTerryLoss, GradientByHand) {
  // dL/dr_w_i = -(1 - s(r_w_i - r_l_i)) / B, dL/dr_l_i = +(1 - s(r_w_i - r_l_i)) / B
  Tensor rw = tensor({2, 0, 0.5}, {.requires_grad = true}), rl = tensor({1, 1, 0.5}, {.requires_grad = true});
  bradley_terry_loss(rw, rl).backward();
  ASSERT_TRUE(rw.grad().defined() && rl.grad().defined()) << "no gradient reached the rewards";
  std::vector<double> d = {1, -1, 0}, gw, gl;
  for (double x : d) gw.push_back(-(1 - sig(x)) / 3), gl.push_back((1 - sig(x)) / 3);
  EXPECT_TRUE(close(rw.grad(), gw, 1e-5));
  EXPECT_TRUE(close(rl.grad(), gl, 1e-5));
}

TEST(Part1_BradleyTerryLoss, GradientMatchesFiniteDifferences) {
  Tensor a = rand64({5}, 1), b = rand64({5}, 2);
  auto r = autograd::gradcheck([](const std::vector<Tensor> &in) { return bradley_terry_loss(in[0], in[1], 0.3); },
                               {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_BradleyTerryProbability, 20, "Bradley-Terry preference probability");

TEST(Part2_BradleyTerryProbability, HandComputedValues) {
  Tensor p = bradley_terry_probability(tensor({2, 0, 5}), tensor({1, 1, 5}));
  EXPECT_EQ(p.shape(), (Shape{3})) << "one probability per pair";
  EXPECT_TRUE(close(p, {sig(1), sig(-1), 0.5}, 1e-6));
}

TEST(Part2_BradleyTerryProbability, SwappingThePairComplementsIt) {
  Tensor a = tensor({0.3, -2, 4}), b = tensor({1, 1, -4});
  Tensor sum = bradley_terry_probability(a, b) + bradley_terry_probability(b, a);
  EXPECT_TRUE(close(sum, {1, 1, 1}, 1e-6));
}

TEST(Part2_BradleyTerryProbability, TheLossIsItsNegativeMeanLog) {
  Tensor a = tensor({0.3, -2, 4}), b = tensor({1, 1, -4});
  const double want = -bradley_terry_probability(a, b).log().mean().item();
  EXPECT_NEAR(bradley_terry_loss(a, b).item(), want, 1e-5);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part3_RewardModelTraining, 40, "a linear reward model trained with your loss");

// Synthetic preference data: a hidden direction w* scores feature vectors; of each random pair the
// higher-scoring one is "chosen" (a noiseless human). x_chosen, x_rejected [n, D].
struct Pairs {
  Tensor chosen, rejected;
};
Pairs make_pairs(const Tensor &w_star, int64_t n, uint64_t seed) {
  manual_seed(seed);
  const int64_t D = w_star.shape()[0];
  auto a = randn({n, D}).to_vector<float>(), b = randn({n, D}).to_vector<float>();
  auto w = w_star.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    double sa = 0, sb = 0;
    for (int64_t d = 0; d < D; ++d) sa += a[i * D + d] * w[d], sb += b[i * D + d] * w[d];
    if (sa < sb)
      for (int64_t d = 0; d < D; ++d) std::swap(a[i * D + d], b[i * D + d]);
  }
  return {from_vector(a, {n, D}), from_vector(b, {n, D})};
}

struct Trained {
  Tensor w, w_star;
  double first_loss, last_loss;
};
// Full-batch gradient descent on the student's loss: r(x) = x . w, w starts at zero.
Trained train_reward_model() {
  const int64_t D = 8, n = 256;
  manual_seed(1234);
  Tensor w_star = randn({D, 1});
  Pairs train = make_pairs(w_star.reshape({D}), n, 99);
  Tensor w = zeros({D, 1}, {.requires_grad = true});
  Trained out{w, w_star, 0, 0};
  for (int step = 0; step < 200; ++step) {
    Tensor loss = bradley_terry_loss(matmul(train.chosen, w).reshape({n}), matmul(train.rejected, w).reshape({n}));
    if (step == 0) out.first_loss = loss.item();
    out.last_loss = loss.item();
    loss.backward();
    if (!w.grad().defined()) throw std::runtime_error("the loss sent no gradient to the reward model's weights");
    w = (w.detach() - w.grad() * 1.0).detach().requires_grad_(true);
  }
  out.w = w.detach();
  return out;
}

TEST(Part3_RewardModelTraining, LossFallsFromLogTwo) {
  Trained t = train_reward_model();
  EXPECT_NEAR(t.first_loss, std::log(2.0), 1e-5) << "an untrained scorer (w = 0) is a coin flip: loss log 2";
  EXPECT_LT(t.last_loss, 0.2) << "after 200 steps of gradient descent the loss should be well below log 2";
}

TEST(Part3_RewardModelTraining, RanksHeldOutPairs) {
  Trained t = train_reward_model();
  Pairs test = make_pairs(t.w_star.reshape({-1}), 500, 7);
  Tensor p = bradley_terry_probability(matmul(test.chosen, t.w).reshape({-1}), matmul(test.rejected, t.w).reshape({-1}));
  const double accuracy = (p > 0.5).to(kFloat32).mean().item();
  EXPECT_GT(accuracy, 0.9) << "the trained scorer should prefer the chosen response on unseen pairs";
}

TEST(Part3_RewardModelTraining, RecoversTheHiddenDirection) {
  // Bradley-Terry only sees differences of rewards, so w is identified up to scale: compare directions.
  Trained t = train_reward_model();
  auto w = t.w.to_vector<double>(), s = t.w_star.to_vector<double>();
  double ws = 0, ww = 0, ss = 0;
  for (size_t i = 0; i < w.size(); ++i) ws += w[i] * s[i], ww += w[i] * w[i], ss += s[i] * s[i];
  const double cosine = ws / std::sqrt(ww * ss + 1e-30);
  EXPECT_GT(cosine, 0.9) << "cosine(w, w*) = " << cosine;
}

}  // namespace
