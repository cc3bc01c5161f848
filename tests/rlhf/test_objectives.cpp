// Every objective of the lecture against numbers computed by hand (shown in the comments), plus
// gradchecks and the properties trainers rely on (e.g. the first PPO minibatch has ratio 1).
#include <cmath>

#include "rlhf/objectives.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_test;

namespace {

double sig(double x) { return 1 / (1 + std::exp(-x)); }

TEST(Objectives, SftLossIsMeanNegativeLogLikelihoodOfResponseTokens) {
  // logp rows [-1, -2 | -3, -4], mask keeps 3 tokens: -(-1 - 2 - 4)/3 = 7/3
  Tensor lp = from_vector<float>({-1, -2, -3, -4}, {2, 2}), m = from_vector<float>({1, 1, 0, 1}, {2, 2});
  EXPECT_NEAR(sft_loss(lp, m).item(), 7.0 / 3, 1e-6);
}

TEST(Objectives, BradleyTerry) {
  // r_w = [2, 0], r_l = [1, 1]: -(log s(1) + log s(-1)) / 2
  Tensor rw = tensor({2, 0}), rl = tensor({1, 1});
  double want = -(std::log(sig(1)) + std::log(sig(-1))) / 2;
  EXPECT_NEAR(bradley_terry_loss(rw, rl).item(), want, 1e-6);
  // margin m = 0.5 shifts the logit: -(log s(0.5) + log s(-1.5)) / 2
  EXPECT_NEAR(bradley_terry_loss(rw, rl, 0.5).item(), -(std::log(sig(0.5)) + std::log(sig(-1.5))) / 2, 1e-6);
  EXPECT_TRUE(allclose(bradley_terry_probability(rw, rl), {sig(1), sig(-1)}, {.atol = 1e-6, .rtol = 1e-6}));
  // Stable for big gaps: no inf/nan.
  EXPECT_NEAR(bradley_terry_loss(tensor({-100}), tensor({100})).item(), 200, 1e-3);
  // gradient d/dr_w = -(1 - s(r_w - r_l)) / B
  Tensor a = rand64({4}), b = rand64({4});
  auto r = autograd::gradcheck([](const std::vector<Tensor> &in) { return bradley_terry_loss(in[0], in[1]); }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Objectives, KlPenalizedRewardsPutTheScoreOnTheLastResponseToken) {
  // beta 0.1; row 0: logp - ref = [0.5, -1, 2], mask [1,1,0] -> [-0.05, 0.1 + 3, 0]
  // row 1: logp - ref = [1, 1, 1], mask [1,1,1] -> [-0.1, -0.1, -0.1 - 2]
  Tensor lp = from_vector<float>({0.5, -1, 2, 1, 1, 1}, {2, 3}), ref = zeros({2, 3});
  Tensor m = from_vector<float>({1, 1, 0, 1, 1, 1}, {2, 3}), score = tensor({3, -2});
  EXPECT_TRUE(allclose(kl_penalized_rewards(score, kl_k1(lp, ref), m, 0.1), {-0.05, 3.1, 0, -0.1, -0.1, -2.1},
                       {.atol = 1e-6, .rtol = 1e-6}));
  // sequence form: R = score - beta KL, KL = logp - ref = [1, 0]
  EXPECT_TRUE(allclose(sequence_rlhf_reward(tensor({1, 2}), kl_k1(tensor({-3, -1}), tensor({-4, -1})), 0.5), {0.5, 2},
                       {.atol = 1e-6, .rtol = 1e-6}));
  // k3 per token: log r = ref - logp = [-0.5, 1, -2 | -1, -1, -1]; k3 = e^{log r} - 1 - log r, masked
  auto k3 = [](double lr) { return std::exp(lr) - 1 - lr; };
  EXPECT_TRUE(allclose(kl_penalized_rewards(score, kl_k3(lp, ref), m, 0.1),
                       {-0.1 * k3(-0.5), -0.1 * k3(1) + 3, 0, -0.1 * k3(-1), -0.1 * k3(-1), -0.1 * k3(-1) - 2},
                       {.atol = 1e-6, .rtol = 1e-6}));
}

TEST(Objectives, AdaptiveKlController) {
  // KL 12 vs target 6: e clips to 0.2; beta 0.1 * (1 + 0.2 * 100/10000) = 0.1002
  EXPECT_NEAR(adaptive_kl_beta(0.1, 12, 6, 100, 10000), 0.1002, 1e-12);
  // KL 5.4 vs 6: e = -0.1 -> 0.1 * (1 - 0.1 * 0.01) = 0.0999
  EXPECT_NEAR(adaptive_kl_beta(0.1, 5.4, 6, 100, 10000), 0.0999, 1e-12);
}

TEST(Objectives, KlEstimators) {
  // logp = log 0.5, ref = log 0.25: log r = log(0.5) = -0.693..; k1 = 0.693, k3 = 0.5 - 1 + 0.693
  double l = std::log(0.5);
  Tensor lp = tensor({std::log(0.5)}), rp = tensor({std::log(0.25)});
  EXPECT_NEAR(kl_k1(lp, rp).item(), -l, 1e-6);
  EXPECT_NEAR(kl_k3(lp, rp).item(), 0.5 - 1 - l, 1e-6);
  // k3 >= 0 always; k1 and k3 agree in expectation: E_q[k3] = KL(q||p) for q = [0.7, 0.3], p = [0.4, 0.6]
  double q[2] = {0.7, 0.3}, p[2] = {0.4, 0.6}, e1 = 0, e3 = 0;
  for (int i = 0; i < 2; ++i) {
    Tensor a = tensor({std::log(q[i])}), b = tensor({std::log(p[i])});
    e1 += q[i] * kl_k1(a, b).item();
    e3 += q[i] * kl_k3(a, b).item();
    EXPECT_GE(kl_k3(a, b).item(), 0);
  }
  EXPECT_NEAR(e1, e3, 1e-6);
}

TEST(Objectives, ReinforceAndRloo) {
  // rewards [1, 3], baseline [2, 2], logp [-1, -2]: -((1-2)(-1) + (3-2)(-2)) / 2 = -(1 - 2)/2 = 0.5
  Tensor lp = tensor({-1, -2}, {.requires_grad = true});
  Tensor loss = reinforce_loss(lp, tensor({1, 3}), tensor({2, 2}));
  EXPECT_NEAR(loss.item(), 0.5, 1e-6);
  loss.backward();
  EXPECT_TRUE(allclose(lp.grad(), {0.5, -0.5}));  // d/dlogp_i = -(R_i - b_i)/B
  // RLOO with k = 3: [1, 2, 6] -> mean 3; A = 1.5 * [-2, -1, 3]
  EXPECT_TRUE(allclose(rloo_advantages(tensor({1, 2, 6}), 3), {-3, -1.5, 4.5}, {.atol = 1e-6, .rtol = 1e-6}));
}

TEST(Objectives, GaeByHand) {
  // gamma 1, lambda 0.5, rewards [0, 0, 1], values [0.5, 0.5, 0.5], all real:
  // delta = [0 + 0.5 - 0.5, 0 + 0.5 - 0.5, 1 + 0 - 0.5] = [0, 0, 0.5]
  // A_2 = 0.5, A_1 = 0 + 0.5 * 0.5 = 0.25, A_0 = 0 + 0.5 * 0.25 = 0.125; R = A + V
  Tensor r = from_vector<float>({0, 0, 1}, {1, 3}), v = from_vector<float>({0.5, 0.5, 0.5}, {1, 3}), m = ones({1, 3});
  auto g = gae(r, v, m, 1.0, 0.5);
  EXPECT_TRUE(allclose(g.advantages, {0.125, 0.25, 0.5}, {.atol = 1e-6, .rtol = 1e-6}));
  EXPECT_TRUE(allclose(g.returns, {0.625, 0.75, 1.0}, {.atol = 1e-6, .rtol = 1e-6}));
  // Padding after the response: V = 0 there and it never leaks back.
  Tensor r2 = from_vector<float>({0, 1, 9}, {1, 3}), v2 = from_vector<float>({0.5, 0.5, 7}, {1, 3});
  Tensor m2 = from_vector<float>({1, 1, 0}, {1, 3});
  auto g2 = gae(r2, v2, m2, 1.0, 1.0);  // delta = [0, 0.5]; A = [0.5, 0.5]
  EXPECT_TRUE(allclose(g2.advantages, {0.5, 0.5, 0}, {.atol = 1e-6, .rtol = 1e-6}));
}

TEST(Objectives, MaskedWhiten) {
  Tensor x = from_vector<float>({1, 2, 3, 100}, {1, 4}), m = from_vector<float>({1, 1, 1, 0}, {1, 4});
  // over [1, 2, 3]: mean 2, biased var 2/3
  double s = 1 / std::sqrt(2.0 / 3 + 1e-8);
  EXPECT_TRUE(allclose(masked_whiten(x, m), {-s, 0, s, 0}, {.atol = 1e-6, .rtol = 1e-5}));
  EXPECT_TRUE(allclose(masked_whiten(x, m, false), {2 - s, 2, 2 + s, 0}, {.atol = 1e-6, .rtol = 1e-5}));
}

TEST(Objectives, PpoPolicyLossClipsAndIsExactOnTheFirstMinibatch) {
  // old == new: ratio 1, loss = -mean(A), no clipping, approx_kl 0
  Tensor lp = tensor({-1, -2, -0.5}), A = tensor({1, -2, 0.5}), m = ones({3});
  auto out = ppo_policy_loss(lp, lp, A, m, 0.2);
  EXPECT_NEAR(out.loss.item(), -(1 - 2 + 0.5) / 3, 1e-6);
  EXPECT_NEAR(out.clipfrac.item(), 0, 1e-9);
  EXPECT_NEAR(out.approx_kl.item(), 0, 1e-9);
  EXPECT_NEAR(out.ratio_mean.item(), 1, 1e-6);
  // ratio e^{0.5} = 1.6487 with A = +1: clipped at 1.2 -> loss = -1.2; with A = -1: max(1.6487, 1.2) = 1.6487
  Tensor new_lp = tensor({0.5, 0.5}), old_lp = tensor({0, 0});
  auto c = ppo_policy_loss(new_lp, old_lp, tensor({1, -1}), ones({2}), 0.2);
  EXPECT_NEAR(c.loss.item(), (-1.2 + std::exp(0.5)) / 2, 1e-5);
  EXPECT_NEAR(c.clipfrac.item(), 0.5, 1e-6);
  EXPECT_NEAR(c.approx_kl.item(), 0.5 * 0.25, 1e-6);
  // gradient flows only through the unclipped term
  Tensor p = tensor({0.5, 0.5}, {.requires_grad = true});
  ppo_policy_loss(p, old_lp, tensor({1, -1}), ones({2}), 0.2).loss.backward();
  EXPECT_TRUE(allclose(p.grad(), {0, std::exp(0.5) / 2}, {.atol = 1e-6, .rtol = 1e-5}));
}

TEST(Objectives, PpoValueLossClips) {
  // V_old 0, V 1, R 2, eps 0.2: unclipped (1-2)^2 = 1, clipped (0.2-2)^2 = 3.24 -> 0.5 * 3.24
  auto out = ppo_value_loss(tensor({1}), tensor({0}), tensor({2}), ones({1}), 0.2);
  EXPECT_NEAR(out.loss.item(), 1.62, 1e-5);
  EXPECT_NEAR(out.clipfrac.item(), 1, 1e-9);
  auto in = ppo_value_loss(tensor({0.1}), tensor({0}), tensor({2}), ones({1}), 0.2);
  EXPECT_NEAR(in.loss.item(), 0.5 * 1.9 * 1.9, 1e-5);
  EXPECT_NEAR(in.clipfrac.item(), 0, 1e-9);
}

TEST(Objectives, EntropyOfUniformIsLogV) {
  EXPECT_TRUE(allclose(entropy_from_logits(zeros({2, 8})), {std::log(8.0), std::log(8.0)},
                       {.atol = 1e-6, .rtol = 1e-6}));
}

TEST(Objectives, DpoAndFamily) {
  // lc - rlc = 1, lr - rlr = -1 -> h = 2; beta 0.1: loss = -log s(0.2); rewards 0.1 and -0.1
  Tensor lc = tensor({-3}), lr = tensor({-6}), rlc = tensor({-4}), rlr = tensor({-5});
  auto d = dpo_loss(lc, lr, rlc, rlr, 0.1);
  EXPECT_NEAR(d.loss.item(), -std::log(sig(0.2)), 1e-6);
  EXPECT_NEAR(d.chosen_rewards.item(), 0.1, 1e-6);
  EXPECT_NEAR(d.rejected_rewards.item(), -0.1, 1e-6);
  // cDPO eps 0.1: -(0.9 log s(0.2) + 0.1 log s(-0.2))
  EXPECT_NEAR(dpo_loss(lc, lr, rlc, rlr, 0.1, 0.1).loss.item(), -(0.9 * std::log(sig(0.2)) + 0.1 * std::log(sig(-0.2))), 1e-6);
  // IPO tau 0.1: (2 - 5)^2 = 9
  EXPECT_NEAR(ipo_loss(lc, lr, rlc, rlr, 0.1).loss.item(), 9, 1e-5);
  // SLiC hinge beta 0.1: max(0, 1 - 0.2) = 0.8; beta 1: max(0, 1 - 2) = 0
  EXPECT_NEAR(slic_hinge_loss(lc, lr, rlc, rlr, 0.1).loss.item(), 0.8, 1e-6);
  EXPECT_NEAR(slic_hinge_loss(lc, lr, rlc, rlr, 1.0).loss.item(), 0, 1e-6);
  // SimPO beta 2, gamma 0.5: 2/3 * -3 - 2/2 * -6 - 0.5 = -2 + 6 - 0.5 = 3.5
  auto s = simpo_loss(tensor({-3}), tensor({3}), tensor({-6}), tensor({2}), 2.0, 0.5);
  EXPECT_NEAR(s.loss.item(), -std::log(sig(3.5)), 1e-6);
  // The reference is frozen: gradients reach only the policy's log-probs.
  Tensor a = rand64({3}), b = rand64({3}), ra = rand64({3}, -1, 1, false), rb = rand64({3}, -1, 1, false);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return dpo_loss(in[0], in[1], ra, rb, 0.5).loss; }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Objectives, RpoNllIsTheChosenAnswersMeanPerTokenNll) {
  // log pi(y_w) summed = [-2, -6] over [2, 3] tokens -> per-token NLL [1, 2] -> mean 1.5
  EXPECT_NEAR(rpo_nll(tensor({-2, -6}), tensor({2, 3})).item(), 1.5, 1e-6);
  Tensor len = tensor({2, 3});
  Tensor lc = rand64({2});
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return rpo_nll(in[0], len.to(kFloat64)); }, {lc});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Objectives, MissingEosPenaltyLowersOnlyUnfinishedRows) {
  // scores [2, -0.5, 1], finished [yes, no, no], penalty 1 -> [2, -1.5, 0]
  Tensor s = tensor({2, -0.5, 1});
  EXPECT_TRUE(allclose(apply_missing_eos_penalty(s, {true, false, false}, 1.0), {2, -1.5, 0},
                       {.atol = 1e-6, .rtol = 1e-6}));
  EXPECT_TRUE(allclose(apply_missing_eos_penalty(s, {true, false, false}, 0.0), {2, -0.5, 1},
                       {.atol = 1e-6, .rtol = 1e-6}));
  EXPECT_THROW(apply_missing_eos_penalty(s, {true}, 1.0), Error);
  EXPECT_THROW(apply_missing_eos_penalty(s, {true, true, true}, -1.0), Error);
}

TEST(Objectives, MovingAverageBaseline) {
  // b = 1, batch mean 3, decay 0.9: 0.9 + 0.3 = 1.2; decay 0 takes the batch mean
  EXPECT_NEAR(moving_average_baseline(1, 3, 0.9), 1.2, 1e-12);
  EXPECT_NEAR(moving_average_baseline(1, 3, 0.0), 3.0, 1e-12);
  EXPECT_THROW(moving_average_baseline(1, 3, 1.0), Error);
}

TEST(Objectives, BadHyperparametersAreClearErrors) {
  Tensor x = tensor({0});
  EXPECT_THROW(dpo_loss(x, x, x, x, -0.1), Error);
  EXPECT_THROW(ppo_policy_loss(x, x, x, ones({1}), 0.0), Error);
  EXPECT_THROW(ppo_value_loss(x, x, x, ones({1}), -1), Error);
  EXPECT_THROW(kl_penalized_rewards(x, x.reshape({1, 1}), ones({1, 1}), -1), Error);
  EXPECT_THROW(sequence_rlhf_reward(x, x, -1), Error);
  EXPECT_THROW(rloo_advantages(tensor({1, 2, 3}), 2), Error);
}

}  // namespace
