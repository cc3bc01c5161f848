// The reward model's objective (lecture: "Reward model"): the Bradley-Terry loss and the preference
// probability it models. Its own file so that assignment 03_reward_model can build the library with
// the student's version in its place (lectures/assignments/).
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// Bradley-Terry reward-model loss (lecture: "Reward model"; InstructGPT eq. 1, Llama 2 eq. 2 for the margin):
//   \mathcal{L}_{RM} = -\mathbb{E}_{(x, y_w, y_l)} \log \sigma(r_\phi(x, y_w) - r_\phi(x, y_l) - m)
Tensor bradley_terry_loss(const Tensor &r_chosen, const Tensor &r_rejected, double margin) {
  return -log_sigmoid(r_chosen - r_rejected - margin).mean();
}

//   P(y_w \succ y_l \mid x) = \sigma(r(x, y_w) - r(x, y_l))
Tensor bradley_terry_probability(const Tensor &r_chosen, const Tensor &r_rejected) {
  return sigmoid(r_chosen - r_rejected);
}

}  // namespace nanorlhf::rlhf
