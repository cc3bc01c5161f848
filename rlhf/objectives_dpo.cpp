// Direct preference optimisation (lecture: "DPO") and SimPO (lecture: "Further reading"). Their own
// file so that assignment 05_dpo can build the library with the student's version in its place
// (lectures/assignments/). IPO and SLiC-HF stay in objectives.cpp.
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// DPO (lecture: "DPO"; Rafailov et al. 2023 eq. 7), with conservative label smoothing \epsilon (cDPO):
//   h = [\log\pi(y_w) - \log\pi_{ref}(y_w)] - [\log\pi(y_l) - \log\pi_{ref}(y_l)]
//   \mathcal{L}_{DPO} = -(1-\epsilon)\log\sigma(\beta h) - \epsilon \log\sigma(-\beta h)
//   implicit reward \hat r(x, y) = \beta \log \frac{\pi_\theta(y \mid x)}{\pi_{ref}(y \mid x)}
PreferenceLoss dpo_loss(const Tensor &lc, const Tensor &lr, const Tensor &rlc, const Tensor &rlr, double beta,
                        double label_smoothing) {
  NR_CHECK(beta > 0, "dpo_loss: beta must be > 0, got {}", beta);
  NR_CHECK(label_smoothing >= 0 && label_smoothing < 0.5, "dpo_loss: label_smoothing must be in [0, 0.5), got {}",
           label_smoothing);
  Tensor h = (lc - rlc.detach()) - (lr - rlr.detach());  // the reference model is frozen
  Tensor z = h * beta;
  Tensor loss = -log_sigmoid(z) * (1 - label_smoothing);
  if (label_smoothing > 0) loss = loss - log_sigmoid(-z) * label_smoothing;
  return {loss.mean(), ((lc - rlc) * beta).detach(), ((lr - rlr) * beta).detach()};
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
