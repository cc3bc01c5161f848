// The lecture's objectives. Each equation sits in LaTeX above the one function that computes it,
// with its source; lectures/03-06 give defaults and pitfalls. The objectives that a course
// assignment asks students to write live in their own files, so that the build can swap in the
// student's file (lectures/assignments/): objectives_reward.cpp (Bradley-Terry), objectives_ppo.cpp
// (GAE, whitening, the PPO losses), objectives_dpo.cpp (DPO, SimPO).
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

// Per-token KL-shaped reward (lecture: "Regularised objective"; lm-human-preferences compute_rewards):
//   r_t = -\beta\, \widehat{KL}_t + [t = T_{last}]\, r_\phi(x, y), \quad
//   \widehat{KL}_t = k_1 = \log \pi_\theta(y_t) - \log \pi_{ref}(y_t) \text{ (or } k_3\text{)}
// score [B]; kl, mask [B, T]. The score lands on the last response token of each row.
Tensor kl_penalized_rewards(const Tensor &score, const Tensor &kl, const Tensor &mask, double beta) {
  NR_CHECK(beta >= 0, "kl_penalized_rewards: beta must be >= 0, got {}", beta);
  Tensor r = kl.detach() * mask * -beta;
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
//   R(x, y) = r_\phi(x, y) - \beta\, \widehat{KL}, \quad
//   \widehat{KL} = k_1 = \log \frac{\pi_\theta(y \mid x)}{\pi_{SFT}(y \mid x)} \text{ (or } \sum_t k_3\text{)}
// score, kl [B].
Tensor sequence_rlhf_reward(const Tensor &score, const Tensor &kl, double beta) {
  NR_CHECK(beta >= 0, "sequence_rlhf_reward: beta must be >= 0, got {}", beta);
  return (score - kl.detach() * beta).detach();
}

// Missing-EOS penalty (N implementation details of RLHF with PPO; TRL `missing_eos_penalty`): a
// response cut off at max_new_tokens never reached the reward model's reading position, so its score
// is lowered by a fixed amount (subtracting, not replacing with -1, keeps it a penalty whatever the
// reward model's scale):
//   \tilde r_\phi(x, y) = r_\phi(x, y) - p\,[\text{no EOS in } y]
Tensor apply_missing_eos_penalty(const Tensor &score, const std::vector<bool> &finished, double penalty) {
  NR_CHECK(score.dim() == 1 && score.numel() == (int64_t)finished.size(),
           "apply_missing_eos_penalty: score {} needs one finished flag per row, got {}", shape_str(score.shape()),
           finished.size());
  NR_CHECK(penalty >= 0, "apply_missing_eos_penalty: penalty must be >= 0, got {}", penalty);
  std::vector<double> p(finished.size());
  for (size_t i = 0; i < finished.size(); ++i) p[i] = finished[i] ? 0.0 : penalty;
  return score.detach() - as_float_like(p, score);
}

// Adaptive KL controller (Ziegler et al. 2019, sec. 2.2):
//   e = \mathrm{clip}\left(\frac{KL - KL_{target}}{KL_{target}}, -0.2, 0.2\right), \quad
//   \beta \leftarrow \beta \left(1 + e \cdot \frac{n_{steps}}{horizon}\right)
double adaptive_kl_beta(double beta, double observed_kl, double target_kl, int64_t n_steps, int64_t horizon) {
  NR_CHECK(target_kl > 0 && horizon > 0, "adaptive_kl_beta: target_kl and horizon must be positive");
  double e = std::clamp((observed_kl - target_kl) / target_kl, -0.2, 0.2);
  return beta * (1 + e * (double)n_steps / (double)horizon);
}

// Best-of-n (Nakano et al. 2021, WebGPT; Gao et al. 2022): n samples of pi, the reward's favourite
// kept. The KL to pi that Gao et al. use, whatever the reward (Beirami et al. 2024 show it is an
// upper bound, exact only when the top sample is never tied):
//   KL_{bon} = \log n - \frac{n - 1}{n}
double best_of_n_kl(int64_t n) {
  NR_CHECK(n >= 1, "best_of_n_kl: n must be >= 1, got {}", n);
  return std::log(double(n)) - double(n - 1) / double(n);
}

// KL estimators (Schulman 2020, "Approximating KL divergence"), samples y ~ \pi_\theta, r = \pi_{ref}/\pi_\theta:
//   k_1 = -\log r
Tensor kl_k1(const Tensor &logp, const Tensor &ref_logp) { return logp - ref_logp; }
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

// Moving-average baseline of REINFORCE (Williams 1992; Ahmadian et al. 2024 "b a moving average"),
// decay \alpha \in [0, 1):  b \leftarrow \alpha\, b + (1 - \alpha)\, \bar R_{batch}
double moving_average_baseline(double baseline, double batch_mean_reward, double decay) {
  NR_CHECK(decay >= 0 && decay < 1, "moving_average_baseline: decay must be in [0, 1), got {}", decay);
  return decay * baseline + (1 - decay) * batch_mean_reward;
}

//   \bar x = \frac{\sum_t m_t x_t}{\sum_t m_t}
Tensor masked_mean(const Tensor &x, const Tensor &mask) {
  return (x * mask).sum() / clamp(mask.sum(), 1.0, 1e30);
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

// RPO's NLL term (Pang et al. 2024, "Iterative Reasoning Preference Optimization"; TRL rpo_alpha),
// added as \alpha \mathcal{L}_{NLL} to a preference loss: the chosen answers' per-token NLL,
//   \mathcal{L}_{NLL} = -\frac{1}{B}\sum_i \frac{\log\pi_\theta(y_w^{(i)} \mid x^{(i)})}{|y_w^{(i)}|}
// It keeps DPO from lowering the chosen answers' likelihood along with the rejected ones'.
Tensor rpo_nll(const Tensor &lc_sum, const Tensor &len_c) { return -(lc_sum / clamp(len_c, 1.0, 1e30)).mean(); }

}  // namespace nanorlhf::rlhf
