// Assignment 07_grpo: GRPO's group-relative advantage and its clipped loss in TRL's four
// normalisations. The declarations (and the GRPOAdvantages / GRPOLoss structs) are in
// rlhf/objectives.h; README.md has the equations.
// Write the two bodies between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=07_grpo
#include <cmath>
#include <string>
#include <vector>

#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// rewards [B G]: the G samples of each prompt in consecutive rows. For each group g:
//   A_i = (r_i - mean_g) / (std + 1e-4)   with std = the group's ("group") or the whole batch's
//   ("batch"), unbiased (n - 1); "none": A_i = r_i - mean_g.
// group_std [B G]: each row's group std (unbiased), whatever scale_rewards says.
// num_generations must be >= 2 and divide the number of rewards, rewards must be 1-D, and
// scale_rewards one of group, batch, none: otherwise throw nanorlhf::Error (NR_CHECK).
GRPOAdvantages grpo_advantages(const Tensor &rewards, int64_t num_generations, const std::string &scale_rewards) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: grpo_advantages");
  // END YOUR SOLUTION
}

// logp, old_logp, ref_logp, mask [B, T]; advantages [B] (one per completion). With
// rho = exp(logp - old_logp) (old_logp detached) and A the row's advantage (detached):
//   l = -min(rho A, clip(rho, 1 - epsilon_low, 1 + epsilon_high) A) + beta k3,
//   k3 = exp(ref - logp) - (ref - logp) - 1   (only when ref_logp is defined; beta > 0 needs it)
// loss by loss_type: grpo = mean over rows of (sum_t m l / max(1, sum_t m));
// bnpo = sum m l / max(1, sum m); dapo = sum m l / max(1, num_items, or sum m when num_items is 0);
// dr_grpo = sum m l / (B max_completion_length).
// kl = masked mean of k3 (when ref_logp is defined); clip_low = masked share of tokens with
// rho < 1 - epsilon_low and A < 0; clip_high: rho > 1 + epsilon_high and A > 0; clip_region: either.
// The metrics carry no gradient. epsilon_low, epsilon_high must be > 0 and loss_type known.
GRPOLoss grpo_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &ref_logp, const Tensor &advantages,
                   const Tensor &mask, double epsilon_low, double epsilon_high, double beta, const std::string &loss_type,
                   int64_t max_completion_length, double num_items) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: grpo_loss");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::rlhf
