// GRPO's objectives (Shao et al. 2024, DeepSeekMath, sec. 4.1): the group-relative advantage and the
// clipped surrogate with a k3 KL term, in TRL's four normalisations. Its own file so that
// assignment 07_grpo can build the library with the student's version in its place.
#include <cmath>
#include <string>
#include <vector>

#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// Group-relative advantage (DeepSeekMath eq. 3 with outcome rewards; TRL scale_rewards): the G
// samples of a prompt are each other's baseline, and with "group" their spread is the scale:
//   \hat A_{i} = \frac{r_i - \mathrm{mean}(r_1, \dots, r_G)}{\mathrm{std}(r_1, \dots, r_G) + 10^{-4}}
// "batch" divides by the std over the whole batch instead (Liu et al. 2025, "Understanding R1-Zero";
// the mean stays the group's), "none" not at all (Dr. GRPO). std is unbiased (n - 1), as torch.std.
// rewards [B G], G consecutive rows per prompt; every advantage is constant over its response's tokens.
GRPOAdvantages grpo_advantages(const Tensor &rewards, int64_t num_generations, const std::string &scale_rewards) {
  const int64_t G = num_generations, n = rewards.numel();
  NR_CHECK(rewards.dim() == 1, "grpo_advantages: rewards must be [B G], got {}", shape_str(rewards.shape()));
  NR_CHECK(G >= 2 && n % G == 0, "grpo_advantages: num_generations must be >= 2 and divide the {} rewards, got {}", n,
           G);
  NR_CHECK(scale_rewards == "group" || scale_rewards == "batch" || scale_rewards == "none",
           "grpo_advantages: unknown scale_rewards '{}'; valid: group, batch, none", scale_rewards);
  std::vector<double> r = rewards.to_vector<double>(), adv(n), gstd(n);
  auto std_of = [](const double *x, int64_t m) {
    double mu = 0, ss = 0;
    for (int64_t i = 0; i < m; ++i) mu += x[i] / double(m);
    for (int64_t i = 0; i < m; ++i) ss += (x[i] - mu) * (x[i] - mu);
    return std::sqrt(ss / double(m - 1));
  };
  const double batch_std = std_of(r.data(), n);
  for (int64_t g = 0; g < n; g += G) {
    double mu = 0;
    for (int64_t i = g; i < g + G; ++i) mu += r[i] / double(G);
    const double s = std_of(r.data() + g, G);
    const double scale = scale_rewards == "group" ? s + 1e-4 : scale_rewards == "batch" ? batch_std + 1e-4 : 1.0;
    for (int64_t i = g; i < g + G; ++i) adv[i] = (r[i] - mu) / scale, gstd[i] = s;
  }
  const TensorOptions like{rewards.dtype(), rewards.device()};
  return {from_vector(adv, rewards.shape(), like), from_vector(gstd, rewards.shape(), like)};
}

// GRPO's per-token loss (DeepSeekMath eq. 3; clip-higher from DAPO, Yu et al. 2025), with
// \rho_{i,t} = \pi_\theta(o_{i,t}) / \pi_{old}(o_{i,t}) and the k3 KL to the reference:
//   \ell_{i,t} = -\min\left(\rho_{i,t} \hat A_i,\; \mathrm{clip}(\rho_{i,t}, 1-\epsilon_{low}, 1+\epsilon_{high}) \hat A_i\right)
//               + \beta \left(\frac{\pi_{ref}}{\pi_\theta} - \log\frac{\pi_{ref}}{\pi_\theta} - 1\right)
// and the loss_type's normalisation over the completion tokens m_{i,t}:
//   grpo:    \frac{1}{B}\sum_i \frac{\sum_t m_{i,t} \ell_{i,t}}{\sum_t m_{i,t}}   (per sequence, DeepSeekMath)
//   bnpo:    \frac{\sum_{i,t} m_{i,t} \ell_{i,t}}{\sum_{i,t} m_{i,t}}             (per token of this batch)
//   dapo:    \frac{\sum_{i,t} m_{i,t} \ell_{i,t}}{N_{items}}                      (per token of the global batch, DAPO)
//   dr_grpo: \frac{\sum_{i,t} m_{i,t} \ell_{i,t}}{B\, L_{max}}                    (a constant, Dr. GRPO)
// grpo weighs a short response's tokens more than a long one's, so wrong answers drift longer
// (Liu et al. 2025); the other three weigh every token alike.
GRPOLoss grpo_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &ref_logp, const Tensor &advantages,
                   const Tensor &mask, double epsilon_low, double epsilon_high, double beta, const std::string &loss_type,
                   int64_t max_completion_length, double num_items) {
  NR_CHECK(logp.dim() == 2 && logp.shape() == old_logp.shape() && logp.shape() == mask.shape(),
           "grpo_loss: logp {}, old_logp {} and mask {} must share one [B, T] shape", shape_str(logp.shape()),
           shape_str(old_logp.shape()), shape_str(mask.shape()));
  NR_CHECK(advantages.dim() == 1 && advantages.shape()[0] == logp.shape()[0],
           "grpo_loss: advantages {} must be [B] for logp {}", shape_str(advantages.shape()), shape_str(logp.shape()));
  NR_CHECK(epsilon_low > 0 && epsilon_high > 0, "grpo_loss: epsilon and epsilon_high must be > 0, got {} and {}",
           epsilon_low, epsilon_high);
  NR_CHECK(beta == 0 || (ref_logp.defined() && ref_logp.shape() == logp.shape()),
           "grpo_loss: beta {} needs ref_logp of shape {}", beta, shape_str(logp.shape()));
  const int64_t B = logp.shape()[0];
  Tensor A = advantages.detach().unsqueeze(1);  // [B, 1], broadcast over the tokens
  Tensor ratio = exp(logp - old_logp.detach());
  Tensor per_token = -minimum(ratio * A, clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * A);
  GRPOLoss out;
  if (ref_logp.defined()) {
    Tensor log_r = ref_logp.detach() - logp;
    Tensor kl = exp(log_r) - log_r - 1.0;  // k3
    if (beta != 0) per_token = per_token + kl * beta;
    NoGradGuard ng;
    out.kl = masked_mean(kl.detach(), mask);
  }
  Tensor summed = (per_token * mask).sum();
  if (loss_type == "grpo") {
    Tensor per_seq = (per_token * mask).sum({1}) / clamp(mask.sum({1}), 1.0, INFINITY);
    out.loss = per_seq.mean();
  } else if (loss_type == "bnpo") {
    out.loss = summed / std::max(1.0, mask.sum().item());
  } else if (loss_type == "dapo") {
    out.loss = summed / std::max(1.0, num_items > 0 ? num_items : mask.sum().item());
  } else if (loss_type == "dr_grpo") {
    NR_CHECK(max_completion_length > 0, "grpo_loss: dr_grpo needs max_completion_length > 0, got {}",
             max_completion_length);
    out.loss = summed / double(B * max_completion_length);
  } else {
    throw Error("grpo_loss: unknown loss_type '" + loss_type + "'; valid: grpo, bnpo, dr_grpo, dapo");
  }
  NoGradGuard ng;
  // TRL's clip_ratio/*: tokens whose ratio left the trust region on the side that stops the gradient.
  Tensor r = ratio.detach(), Ab = A.expand(logp.shape());
  Tensor low = (r < 1 - epsilon_low).to(mask.dtype()) * (Ab < 0.0).to(mask.dtype());
  Tensor high = (r > 1 + epsilon_high).to(mask.dtype()) * (Ab > 0.0).to(mask.dtype());
  out.clip_low = masked_mean(low, mask);
  out.clip_high = masked_mean(high, mask);
  out.clip_region = masked_mean(low + high, mask);
  return out;
}

}  // namespace nanorlhf::rlhf
