// The lecture's objectives. Each equation sits in LaTeX above the one function that computes it,
// with its source; see ../shared/FORMULAS.md for defaults and pitfalls.
#include "rlhf/objectives.h"

#include <algorithm>
#include <cmath>

namespace nanorlhf::rlhf {

namespace {
Tensor as_float_like(const std::vector<double> &v, const Tensor &like) {
  return from_vector(v, like.shape(), {like.dtype(), like.device()});
}
}  // namespace

// Instruction tuning (lecture: "Instruction tuning"; FLAN):
//   \mathcal{L}_{SFT}(\theta) = -\frac{1}{\sum_t m_t} \sum_t m_t \log p_\theta(y_t \mid x, y_{<t})
// token_logprobs, mask [B, T]: only response tokens count (prompt and padding masked out).
Tensor sft_loss(const Tensor &token_logprobs, const Tensor &mask) { return -masked_mean(token_logprobs, mask); }

// Bradley-Terry reward-model loss (lecture: "Reward model"; InstructGPT eq. 1, Llama 2 eq. 2 for the margin):
//   \mathcal{L}_{RM} = -\mathbb{E}_{(x, y_w, y_l)} \log \sigma(r_\phi(x, y_w) - r_\phi(x, y_l) - m)
Tensor bradley_terry_loss(const Tensor &r_chosen, const Tensor &r_rejected, double margin) {
  return -log_sigmoid(r_chosen - r_rejected - margin).mean();
}

//   P(y_w \succ y_l \mid x) = \sigma(r(x, y_w) - r(x, y_l))
Tensor bradley_terry_probability(const Tensor &r_chosen, const Tensor &r_rejected) {
  return sigmoid(r_chosen - r_rejected);
}

// Per-token KL-shaped reward (lecture: "Regularised objective"; lm-human-preferences compute_rewards):
//   r_t = -\beta (\log \pi_\theta(y_t) - \log \pi_{ref}(y_t)) + [t = T_{last}]\, r_\phi(x, y)
// score [B]; logp, ref_logp, mask [B, T]. The score lands on the last response token of each row.
Tensor kl_penalized_rewards(const Tensor &score, const Tensor &logp, const Tensor &ref_logp, const Tensor &mask,
                            double beta) {
  NR_CHECK(beta >= 0, "kl_penalized_rewards: beta must be >= 0, got {}", beta);
  Tensor r = (logp - ref_logp).detach() * mask * -beta;
  auto m = mask.to_vector<double>(), s = score.to_vector<double>();
  int64_t B = mask.shape()[0], T = mask.shape()[1];
  std::vector<double> bonus(B * T, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = -1;
    for (int64_t t = 0; t < T; ++t) if (m[b * T + t] > 0) last = t;
    if (last >= 0) bonus[b * T + last] = s[b];
  }
  return r + as_float_like(bonus, r);
}

// Sequence-level KL-regularised reward (lecture: "Regularised objective"; InstructGPT eq. 2):
//   R(x, y) = r_\phi(x, y) - \beta \log \frac{\pi_\theta(y \mid x)}{\pi_{SFT}(y \mid x)}
Tensor sequence_rlhf_reward(const Tensor &score, const Tensor &logp_sum, const Tensor &ref_logp_sum, double beta) {
  NR_CHECK(beta >= 0, "sequence_rlhf_reward: beta must be >= 0, got {}", beta);
  return (score - (logp_sum - ref_logp_sum) * beta).detach();
}

// Adaptive KL controller (Ziegler et al. 2019, sec. 2.2):
//   e = \mathrm{clip}\left(\frac{KL - KL_{target}}{KL_{target}}, -0.2, 0.2\right), \quad
//   \beta \leftarrow \beta \left(1 + e \cdot \frac{n_{steps}}{horizon}\right)
double adaptive_kl_beta(double beta, double observed_kl, double target_kl, int64_t n_steps, int64_t horizon) {
  NR_CHECK(target_kl > 0 && horizon > 0, "adaptive_kl_beta: target_kl and horizon must be positive");
  double e = std::clamp((observed_kl - target_kl) / target_kl, -0.2, 0.2);
  return beta * (1 + e * (double)n_steps / (double)horizon);
}

// KL estimators (Schulman 2020, "Approximating KL divergence"), samples y ~ \pi_\theta, r = \pi_{ref}/\pi_\theta:
//   k_1 = -\log r
Tensor kl_k1(const Tensor &logp, const Tensor &ref_logp) { return logp - ref_logp; }
//   k_2 = \tfrac12 (\log r)^2
Tensor kl_k2(const Tensor &logp, const Tensor &ref_logp) { return square(logp - ref_logp) * 0.5; }
//   k_3 = (r - 1) - \log r
Tensor kl_k3(const Tensor &logp, const Tensor &ref_logp) {
  Tensor log_r = ref_logp - logp;
  return exp(log_r) - 1.0 - log_r;
}

// REINFORCE with a baseline (lecture: "RL"; Williams 1992; Ahmadian et al. 2024):
//   \nabla_\theta J = \mathbb{E}[(R - b) \nabla_\theta \log \pi_\theta(y \mid x)]
//   \mathcal{L} = -\frac1B \sum_i (R_i - b_i)\, \log \pi_\theta(y_i \mid x_i)
Tensor reinforce_loss(const Tensor &logp_sum, const Tensor &rewards, const Tensor &baseline) {
  return -((rewards - baseline).detach() * logp_sum).mean();
}

// RLOO leave-one-out baseline (Ahmadian et al. 2024), k samples per prompt in consecutive rows:
//   A_i = R_i - \frac{1}{k-1} \sum_{j \ne i} R_j = \frac{k}{k-1} (R_i - \bar R)
Tensor rloo_advantages(const Tensor &rewards, int64_t k) {
  NR_CHECK(k >= 2 && rewards.numel() % k == 0, "rloo_advantages: need k >= 2 dividing the batch ({} rows, k = {})",
           rewards.numel(), k);
  Tensor r = rewards.detach().reshape({-1, k});
  return ((r - r.mean({1}, true)) * ((double)k / (double)(k - 1))).reshape(rewards.shape());
}

// Generalised Advantage Estimation (Schulman et al. 2016), V = 0 after the last token:
//   \delta_t = r_t + \gamma V_{t+1} - V_t, \qquad A_t = \delta_t + \gamma \lambda A_{t+1}, \qquad R_t = A_t + V_t
// rewards, values, mask [B, T]; computed by a reversed loop on the host (it is O(B T)).
GAEResult gae(const Tensor &rewards, const Tensor &values, const Tensor &mask, double gamma, double lam) {
  NR_CHECK(rewards.shape() == values.shape() && rewards.shape() == mask.shape() && rewards.dim() == 2,
           "gae: rewards {}, values {} and mask {} must share one [B, T] shape", shape_str(rewards.shape()),
           shape_str(values.shape()), shape_str(mask.shape()));
  int64_t B = rewards.shape()[0], T = rewards.shape()[1];
  auto r = rewards.to_vector<double>(), v = values.to_vector<double>(), m = mask.to_vector<double>();
  std::vector<double> adv(B * T, 0.0), ret(B * T, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double next_v = 0, next_a = 0;
    for (int64_t t = T - 1; t >= 0; --t) {
      int64_t i = b * T + t;
      if (m[i] == 0) { next_v = 0; next_a = 0; continue; }
      double delta = r[i] + gamma * next_v - v[i];
      adv[i] = delta + gamma * lam * next_a;
      ret[i] = adv[i] + v[i];
      next_v = v[i];
      next_a = adv[i];
    }
  }
  return {as_float_like(adv, rewards), as_float_like(ret, rewards)};
}

//   \bar x = \frac{\sum_t m_t x_t}{\sum_t m_t}
Tensor masked_mean(const Tensor &x, const Tensor &mask) {
  return (x * mask).sum() / clamp(mask.sum(), 1.0, 1e30);
}

// Whitening over the masked entries (biased variance, eps 1e-8; N implementation details):
//   \hat x = (x - \bar x) / \sqrt{\mathrm{Var}_m[x] + 10^{-8}}  (+ \bar x again when the mean is kept)
Tensor masked_whiten(const Tensor &x, const Tensor &mask, bool shift_mean) {
  Tensor mu = masked_mean(x, mask);
  Tensor var = masked_mean(square(x - mu), mask);
  Tensor w = (x - mu) * rsqrt(var + 1e-8);
  if (!shift_mean) w = w + mu;
  return w * mask;
}

// PPO clipped surrogate (lecture: "PPO"; Schulman et al. 2017 eq. 7), \rho_t = \exp(\log\pi_\theta - \log\pi_{old}):
//   \mathcal{L}^{CLIP} = \mathbb{E}_t\left[\max\left(-A_t \rho_t,\; -A_t\, \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\right)\right]
PPOPolicyLoss ppo_policy_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &advantages, const Tensor &mask,
                              double clip_eps) {
  NR_CHECK(clip_eps > 0, "ppo_policy_loss: clip range must be > 0, got {}", clip_eps);
  Tensor log_ratio = logp - old_logp.detach();
  Tensor ratio = exp(log_ratio);
  Tensor A = advantages.detach();
  Tensor pg1 = -A * ratio, pg2 = -A * clamp(ratio, 1 - clip_eps, 1 + clip_eps);
  PPOPolicyLoss out;
  out.loss = masked_mean(maximum(pg1, pg2), mask);
  NoGradGuard ng;
  out.clipfrac = masked_mean((pg2 > pg1).to(mask.dtype()), mask);
  out.approx_kl = masked_mean(square(log_ratio), mask) * 0.5;
  out.ratio_mean = masked_mean(ratio, mask);
  return out;
}

// Clipped value loss (baselines ppo2), V_{clip} = V_{old} + \mathrm{clip}(V - V_{old}, -\epsilon_v, \epsilon_v):
//   \mathcal{L}^{V} = \tfrac12 \mathbb{E}_t\left[\max\left((V_t - R_t)^2, (V_{clip,t} - R_t)^2\right)\right]
PPOValueLoss ppo_value_loss(const Tensor &values, const Tensor &old_values, const Tensor &returns, const Tensor &mask,
                            double clip_eps) {
  NR_CHECK(clip_eps > 0, "ppo_value_loss: value clip range must be > 0, got {}", clip_eps);
  Tensor old = old_values.detach(), R = returns.detach();
  Tensor v_clip = old + clamp(values - old, -clip_eps, clip_eps);
  Tensor l1 = square(values - R), l2 = square(v_clip - R);
  PPOValueLoss out;
  out.loss = masked_mean(maximum(l1, l2), mask) * 0.5;
  NoGradGuard ng;
  out.clipfrac = masked_mean((l2 > l1).to(mask.dtype()), mask);
  return out;
}

// Entropy of the next-token distribution: H = -\sum_v p_v \log p_v, logits [..., V] -> [...]
Tensor entropy_from_logits(const Tensor &logits) {
  Tensor logp = log_softmax(logits, -1);
  return -(exp(logp) * logp).sum({-1});
}

namespace {
// h = [\log\pi(y_w) - \log\pi_{ref}(y_w)] - [\log\pi(y_l) - \log\pi_{ref}(y_l)]
Tensor preference_logit(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr) {
  return (lc - rlc.detach()) - (lr - rlr.detach());
}
}  // namespace

// DPO (lecture: "DPO"; Rafailov et al. 2023 eq. 7), with conservative label smoothing \epsilon (cDPO):
//   \mathcal{L}_{DPO} = -(1-\epsilon)\log\sigma(\beta h) - \epsilon \log\sigma(-\beta h)
//   implicit reward \hat r(x, y) = \beta \log \frac{\pi_\theta(y \mid x)}{\pi_{ref}(y \mid x)}
PreferenceLoss dpo_loss(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr, double beta,
                        double label_smoothing) {
  NR_CHECK(beta > 0, "dpo_loss: beta must be > 0, got {}", beta);
  NR_CHECK(label_smoothing >= 0 && label_smoothing < 0.5, "dpo_loss: label_smoothing must be in [0, 0.5), got {}",
           label_smoothing);
  Tensor z = preference_logit(lc, lr, rlc, rlr) * beta;
  Tensor loss = -log_sigmoid(z) * (1 - label_smoothing);
  if (label_smoothing > 0) loss = loss - log_sigmoid(-z) * label_smoothing;
  return {loss.mean(), ((lc - rlc) * beta).detach(), ((lr - rlr) * beta).detach()};
}

// IPO (Azar et al. 2023 eq. 17), on summed log-ratios:  \mathcal{L}_{IPO} = (h - \tfrac{1}{2\tau})^2
PreferenceLoss ipo_loss(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr, double tau) {
  NR_CHECK(tau > 0, "ipo_loss: tau must be > 0, got {}", tau);
  Tensor h = preference_logit(lc, lr, rlc, rlr);
  return {square(h - 1.0 / (2 * tau)).mean(), ((lc - rlc) * tau).detach(), ((lr - rlr) * tau).detach()};
}

// SLiC-HF calibration hinge (Zhao et al. 2023; TRL "hinge"):  \mathcal{L} = \max(0, 1 - \beta h)
PreferenceLoss slic_hinge_loss(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr, double beta) {
  NR_CHECK(beta > 0, "slic_hinge_loss: beta must be > 0, got {}", beta);
  Tensor h = preference_logit(lc, lr, rlc, rlr);
  return {relu(1.0 - h * beta).mean(), ((lc - rlc) * beta).detach(), ((lr - rlr) * beta).detach()};
}

// SimPO (Meng, Xia, Chen 2024 eq. 6), reference-free, length-normalised:
//   \mathcal{L} = -\log\sigma\left(\frac{\beta}{|y_w|}\log\pi(y_w \mid x) - \frac{\beta}{|y_l|}\log\pi(y_l \mid x) - \gamma\right)
PreferenceLoss simpo_loss(const Tensor &lc_sum, const Tensor &len_c, const Tensor &lr_sum, const Tensor &len_r,
                          double beta, double gamma) {
  NR_CHECK(beta > 0, "simpo_loss: beta must be > 0, got {}", beta);
  Tensor rc = lc_sum / clamp(len_c, 1.0, 1e30) * beta, rr = lr_sum / clamp(len_r, 1.0, 1e30) * beta;
  return {-log_sigmoid(rc - rr - gamma).mean(), rc.detach(), rr.detach()};
}

}  // namespace nanorlhf::rlhf
