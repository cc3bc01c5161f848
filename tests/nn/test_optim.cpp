// Optimizers against hand-computed steps: AdamW (bias correction, decoupled decay, the float32 kernel
// against the float64 loop), SGD with momentum, global-norm clipping, schedules, and a quadratic.
#include <cmath>

#include "nn/optim.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

Tensor param(std::initializer_list<double> v, DType dt = kFloat64) {
  Tensor p = tensor(v, {.dtype = dt});
  p.requires_grad_(true);
  return p;
}
void set_grad(Tensor &p, std::initializer_list<double> g) { p.set_grad(tensor(g, {.dtype = p.dtype()})); }

// One parameter p0 = 1, lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; grads 0.5 then -1:
//   t=1: m = 0.05, v = 0.00025, mhat = 0.5, vhat = 0.25
//        p = 1 - 0.1 (0.5 / (0.5 + 1e-8) + 0.01 * 1)                       = 0.899000002
//   t=2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
//        mhat = -0.055 / 0.19 = -0.289473684..., vhat = 0.00124975 / 0.001999 = 0.625187594...
//        p = 0.899000002 - 0.1 (-0.289473684 / (0.790688...+1e-8) + 0.01 * 0.899000002) = 0.934711354...
TEST(AdamW, MatchesHandComputedSteps) {
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor p = param({1.0}, dt);
    optim::AdamW opt({p}, {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.01});
    set_grad(p, {0.5});
    opt.step();
    const double tol = dt == kFloat64 ? 1e-12 : 1e-6;
    EXPECT_NEAR(p.item(), 0.899000002, tol);
    set_grad(p, {-1.0});
    opt.step();
    EXPECT_NEAR(p.item(), 0.9347113542385653, tol);
    EXPECT_EQ(opt.steps(), 2);
  }
}

// At t = 1 the bias corrections make mhat = g and vhat = g^2, so every coordinate moves by
// lr * g / (|g| + eps) ~ lr * sign(g), whatever the gradient's scale.
TEST(AdamW, BiasCorrectionMakesTheFirstStepLrTimesSign) {
  Tensor p = param({1.0, 2.0, 3.0});
  optim::AdamW opt({p}, {.lr = 0.01});
  set_grad(p, {0.001, -5.0, 100.0});
  opt.step();
  EXPECT_TRUE(allclose(p, {1.0 - 0.01, 2.0 + 0.01, 3.0 - 0.01}, {.atol = 1e-7, .rtol = 0}));
}

// Decoupled: a zero gradient still shrinks p by lr * wd * p (Adam with L2 would move each
// coordinate by about lr instead: [1.9, 3.9], not [1.9, 3.8]).
TEST(AdamW, WeightDecayIsDecoupled) {
  for (DType dt : {kFloat64, kFloat32}) {
    Tensor p = param({2.0, 4.0}, dt);
    optim::AdamW opt({p}, {.lr = 0.1, .weight_decay = 0.5});
    set_grad(p, {0.0, 0.0});
    opt.step();
    EXPECT_TRUE(allclose(p, {1.9, 3.8}, {.atol = 1e-7, .rtol = 1e-6}));
  }
}

TEST(AdamW, SkipsParametersWithoutGradAndFollowsSetLr) {
  Tensor a = param({1.0}), b = param({1.0});
  optim::AdamW opt({a, b}, {.lr = 0.1});
  set_grad(a, {1.0});
  opt.set_lr(0.5);
  opt.step();
  EXPECT_NEAR(a.item(), 0.5, 1e-7);
  EXPECT_DOUBLE_EQ(b.item(), 1.0);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

// lr 0.1, momentum 0.9, grads 1 then 2 (p0 = 1):
//   no decay:  b1 = 1, p = 0.9;  b2 = 0.9 + 2 = 2.9, p = 0.9 - 0.29 = 0.61
//   decay 0.1: d1 = 1.1, b1 = 1.1, p = 0.89;  d2 = 2 + 0.089 = 2.089, b2 = 0.99 + 2.089 = 3.079,
//              p = 0.89 - 0.3079 = 0.5821
TEST(SGD, MomentumTwoStepsByHand) {
  for (double wd : {0.0, 0.1}) {
    Tensor p = param({1.0});
    optim::SGD opt({p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = wd});
    set_grad(p, {1.0});
    opt.step();
    EXPECT_NEAR(p.item(), wd == 0 ? 0.9 : 0.89, 1e-12);
    set_grad(p, {2.0});
    opt.step();
    EXPECT_NEAR(p.item(), wd == 0 ? 0.61 : 0.5821, 1e-12);
  }
}

// Grads [3, 4] and [12]: global norm sqrt(9 + 16 + 144) = 13; max 6.5 halves them.
TEST(ClipGradNorm, ReturnsThePreClipNormAndScalesInPlace) {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = param({0.0, 0.0}, dt), b = param({0.0}, dt), c = param({0.0}, dt);  // c has no grad
    set_grad(a, {3.0, 4.0});
    set_grad(b, {12.0});
    double norm = optim::clip_grad_norm_({a, b, c}, 6.5);
    EXPECT_NEAR(norm, 13.0, 1e-6);
    EXPECT_TRUE(allclose(a.grad(), {1.5, 2.0}, {.rtol = 1e-6}));
    EXPECT_TRUE(allclose(b.grad(), {6.0}, {.rtol = 1e-6}));
    EXPECT_FALSE(c.grad().defined());
    // under the bound: returned, untouched
    norm = optim::clip_grad_norm_({a, b}, 100.0);
    EXPECT_NEAR(norm, 6.5, 1e-5);
    EXPECT_TRUE(allclose(b.grad(), {6.0}, {.rtol = 1e-6}));
  }
}

// base 1, 100 steps, 10 warm-up, min ratio 0.1. Step 28: p = 18/90 = 0.2;
// linear 1 - 0.9 * 0.2 = 0.82; cosine 0.1 + 0.45 (1 + cos(0.2 pi)) = 0.914058...
TEST(LrSchedule, KeySteps) {
  auto lr = [](const char *k, int64_t s) { return optim::lr_schedule(k, s, 100, 10, 1.0, 0.1); };
  for (const char *k : {"constant", "cosine", "linear"}) {
    EXPECT_DOUBLE_EQ(lr(k, 0), 0.1) << k;   // warm-up: (s + 1) / W
    EXPECT_DOUBLE_EQ(lr(k, 4), 0.5) << k;
    EXPECT_DOUBLE_EQ(lr(k, 9), 1.0) << k;
    EXPECT_DOUBLE_EQ(lr(k, 10), 1.0) << k;  // decay starts at the base rate
  }
  EXPECT_DOUBLE_EQ(lr("constant", 99), 1.0);
  EXPECT_NEAR(lr("linear", 28), 0.82, 1e-12);
  EXPECT_NEAR(lr("cosine", 28), 0.1 + 0.45 * (1 + std::cos(0.2 * M_PI)), 1e-12);
  EXPECT_NEAR(lr("cosine", 28), 0.914058, 1e-6);
  EXPECT_NEAR(lr("cosine", 55), 0.55, 1e-12);
  EXPECT_NEAR(lr("linear", 55), 0.55, 1e-12);
  EXPECT_NEAR(lr("cosine", 100), 0.1, 1e-12);
  EXPECT_NEAR(lr("linear", 500), 0.1, 1e-12);  // clamped past the end
  EXPECT_DOUBLE_EQ(optim::lr_schedule("cosine", 0, 100, 0, 2.0), 2.0);  // no warm-up
  try {
    optim::lr_schedule("step", 0, 10, 0, 1.0);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("cosine"), std::string::npos) << e.what();
  }
}

// f(x) = sum_i a_i (x_i - c_i)^2 has its minimum at c: both optimizers must get there.
TEST(Optimizers, MinimiseAQuadratic) {
  const std::vector<double> c = {1.5, -2.0, 0.25}, a = {1.0, 10.0, 0.1};
  for (int which = 0; which < 2; ++which) {
    Tensor x = param({0.0, 0.0, 0.0}, kFloat32);
    Tensor ct = tensor({1.5, -2.0, 0.25}), at = tensor({1.0, 10.0, 0.1});
    std::unique_ptr<optim::Optimizer> opt;
    if (which == 0) opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{x}, optim::AdamWOptions{.lr = 0.05});
    else opt = std::make_unique<optim::SGD>(std::vector<Tensor>{x}, optim::SGDOptions{.lr = 0.02, .momentum = 0.9});
    double loss = 0;
    for (int it = 0; it < 1500; ++it) {
      opt->zero_grad();
      Tensor f = (at * square(x - ct)).sum();
      loss = f.item();
      f.backward();
      opt->step();
    }
    EXPECT_LT(loss, 1e-6) << (which ? "SGD" : "AdamW");
    EXPECT_TRUE(allclose(x, c, {.atol = 2e-3, .rtol = 0})) << (which ? "SGD" : "AdamW");
  }
}

TEST(Optimizers, RejectIntegerParametersAndBadOptions) {
  Tensor i = tensor({1.0}, {.dtype = kInt64});
  EXPECT_THROW(optim::AdamW({i}), Error);
  Tensor p = param({1.0});
  EXPECT_THROW(optim::AdamW({p}, {.beta1 = 1.0}), Error);
  EXPECT_THROW(optim::SGD({p}, {.momentum = 1.5}), Error);
}

}  // namespace
