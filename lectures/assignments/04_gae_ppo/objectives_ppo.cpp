// Assignment 04_gae_ppo: Generalised Advantage Estimation, masked whitening, and PPO's clipped policy
// and value losses. The declarations (and the GAEResult, PPOPolicyLoss, PPOValueLoss structs) are in
// rlhf/objectives.h; README.md has the equations.
// Write the four bodies between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=04_gae_ppo
#include <vector>

#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// rewards, values, mask [B, T] (mask 1 = a response token). Scan each row backwards from t = T-1:
//   delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lam A_{t+1},  R_t = A_t + V_t
// with V_{t+1} = A_{t+1} = 0 after the last response token; masked positions get A = R = 0.
// Returns {advantages, returns}, both [B, T], with the dtype and device of `rewards`.
GAEResult gae(const Tensor &rewards, const Tensor &values, const Tensor &mask, double gamma, double lam) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: gae");
  // END YOUR SOLUTION
}

// (x - mean) / sqrt(var + 1e-8) over the entries where mask = 1 (biased variance); the mean is
// added back when shift_mean is false; masked-out entries come out 0. Use masked_mean.
Tensor masked_whiten(const Tensor &x, const Tensor &mask, bool shift_mean) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: masked_whiten");
  // END YOUR SOLUTION
}

// logp, old_logp, advantages, mask [B, T]. ratio = exp(logp - old_logp); the loss is the masked mean
// of max(-A ratio, -A clip(ratio, 1 - clip_eps, 1 + clip_eps)). Gradients flow into logp only.
// Also fill clipfrac (masked fraction where the clipped term is the larger), approx_kl
// (masked mean of 0.5 (logp - old_logp)^2) and ratio_mean (masked mean of the ratio).
PPOPolicyLoss ppo_policy_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &advantages, const Tensor &mask,
                              double clip_eps) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: ppo_policy_loss");
  // END YOUR SOLUTION
}

// values, old_values, returns, mask [B, T]. V_clip = old + clip(V - old, -clip_eps, clip_eps); the
// loss is 0.5 * masked mean of max((V - R)^2, (V_clip - R)^2); clipfrac is the masked fraction where
// the clipped term is the larger. Gradients flow into values only.
PPOValueLoss ppo_value_loss(const Tensor &values, const Tensor &old_values, const Tensor &returns, const Tensor &mask,
                            double clip_eps) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: ppo_value_loss");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::rlhf
