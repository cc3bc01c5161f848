// Assignment 05_dpo: the DPO loss (with cDPO label smoothing) and SimPO, its reference-free,
// length-normalised relative. The declarations (and the PreferenceLoss struct) are in
// rlhf/objectives.h; README.md has the equations.
// Write the two bodies between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=05_dpo
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// lc, lr [B]: the policy's summed log-probs of the chosen and rejected responses; rlc, rlr [B]: the
// frozen reference model's. h = (lc - rlc) - (lr - rlr);
//   loss = mean_i [ -(1 - eps) log sigmoid(beta h_i) - eps log sigmoid(-beta h_i) ],  eps = label_smoothing
// chosen_rewards = beta (lc - rlc), rejected_rewards = beta (lr - rlr), both detached.
// beta must be > 0 and label_smoothing in [0, 0.5): otherwise throw nanorlhf::Error (NR_CHECK).
PreferenceLoss dpo_loss(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr, double beta,
                        double label_smoothing) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: dpo_loss");
  // END YOUR SOLUTION
}

// lc_sum, lr_sum [B]: summed log-probs; len_c, len_r [B]: response lengths in tokens (clamp to >= 1).
// r_c = beta lc_sum / len_c, r_r = beta lr_sum / len_r;  loss = mean_i -log sigmoid(r_c - r_r - gamma)
// chosen_rewards = r_c, rejected_rewards = r_r, both detached. beta must be > 0.
PreferenceLoss simpo_loss(const Tensor &lc_sum, const Tensor &len_c, const Tensor &lr_sum, const Tensor &len_r,
                          double beta, double gamma) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: simpo_loss");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::rlhf
