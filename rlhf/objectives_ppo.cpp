// PPO's objectives (lecture: "PPO"): Generalised Advantage Estimation, masked whitening, the clipped
// policy surrogate and the clipped value loss. Its own file so that assignment 04_gae_ppo can build
// the library with the student's version in its place (lectures/assignments/).
#include <vector>

#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

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
  const TensorOptions like{rewards.dtype(), rewards.device()};
  return {from_vector(adv, rewards.shape(), like), from_vector(ret, rewards.shape(), like)};
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

}  // namespace nanorlhf::rlhf
