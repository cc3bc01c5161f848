// Assignment 03_reward_model: the Bradley-Terry loss of the reward model and the preference
// probability it models. The declarations are in rlhf/objectives.h; README.md has the equations.
// Write the two bodies between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=03_reward_model
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// r_chosen, r_rejected [B]: the reward model's scores of the preferred and the dispreferred
// response to the same prompt. Returns the scalar loss, a mean over the batch:
//   L = -mean_i log sigmoid(r_chosen_i - r_rejected_i - margin)
Tensor bradley_terry_loss(const Tensor &r_chosen, const Tensor &r_rejected, double margin) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: bradley_terry_loss");
  // END YOUR SOLUTION
}

// [B]: the modelled probability that the chosen response is preferred, sigmoid(r_chosen - r_rejected).
Tensor bradley_terry_probability(const Tensor &r_chosen, const Tensor &r_rejected) {
  // BEGIN YOUR SOLUTION
  throw nanorlhf::Error("not implemented yet: bradley_terry_probability");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::rlhf
