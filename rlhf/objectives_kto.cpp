// KTO (lecture: "KTO"): the prospect-theoretic loss on unpaired thumbs-up / thumbs-down examples and
// its reference point, estimated from mismatched prompt/completion pairs of the batch.
#include "rlhf/objectives.h"

namespace nanorlhf::rlhf {

// The KTO reference point (Ethayarajh et al. 2024, sec. 4.1; TRL KTOTrainer's `kl`): the policy's KL
// to the reference, estimated on mismatched pairs (x_j, y'_j) of the batch, clamped at 0, no gradient:
//   \hat z_0 = \max\Big(0, \frac{1}{m}\sum_{j=1}^{m} \log\frac{\pi_\theta(y'_j \mid x_j)}{\pi_{ref}(y'_j \mid x_j)}\Big)
Tensor kto_reference_point(const Tensor &kl_logp, const Tensor &kl_ref_logp) {
  NR_CHECK(kl_logp.dim() == 1 && kl_logp.shape() == kl_ref_logp.shape() && kl_logp.numel() > 0,
           "kto_reference_point: expected two equal non-empty [m] log-prob tensors, got {} and {}",
           shape_str(kl_logp.shape()), shape_str(kl_ref_logp.shape()));
  return clamp((kl_logp - kl_ref_logp).mean(), 0.0, 1e30).detach();  // a baseline, not a target
}

// KTO (Ethayarajh et al. 2024 eq. 7, TRL loss_type "kto"), with r_\theta = \log\pi_\theta(y \mid x) - \log\pi_{ref}(y \mid x):
//   \mathcal{L}_{KTO} = \frac{1}{B}\sum_{i=1}^{B} \begin{cases} \lambda_D\,\big(1 - \sigma(\beta(r_\theta(x_i, y_i) - z_0))\big) & y_i \text{ desirable} \\ \lambda_U\,\big(1 - \sigma(\beta(z_0 - r_\theta(x_i, y_i)))\big) & y_i \text{ undesirable} \end{cases}
// A plain mean over all B examples, as TRL (the weights are not renormalised); z0 is detached.
KTOLoss kto_loss(const Tensor &logp, const Tensor &ref_logp, const std::vector<bool> &desirable, const Tensor &z0,
                 double beta, double desirable_weight, double undesirable_weight) {
  NR_CHECK(beta > 0, "kto_loss: beta must be > 0, got {}", beta);
  NR_CHECK(desirable_weight >= 0 && undesirable_weight >= 0,
           "kto_loss: desirable_weight and undesirable_weight must be >= 0, got {} and {}", desirable_weight,
           undesirable_weight);
  const int64_t B = logp.numel();
  NR_CHECK(logp.dim() == 1 && B > 0 && logp.shape() == ref_logp.shape() && (size_t)B == desirable.size(),
           "kto_loss: expected [B] log-probs, [B] reference log-probs and B labels, got {}, {} and {} labels",
           shape_str(logp.shape()), shape_str(ref_logp.shape()), desirable.size());
  Tensor r = logp - ref_logp.detach();  // the reference model is frozen
  Tensor z = z0.detach();
  // 1 - sigma(a) = sigma(-a): written so to keep the small tail exact.
  Tensor gain = sigmoid((z - r) * beta) * desirable_weight, loss_of_bad = sigmoid((r - z) * beta) * undesirable_weight;
  std::vector<double> d(desirable.begin(), desirable.end());
  Tensor is_d = from_vector<double>(d, {B}).to(logp.dtype()).to(logp.device());  // 1 desirable, 0 not
  std::vector<int64_t> di, ui;
  for (int64_t i = 0; i < B; ++i) (desirable[(size_t)i] ? di : ui).push_back(i);
  Tensor rewards = (r * beta).detach();
  auto pick = [&](const std::vector<int64_t> &idx) {
    return index_select(rewards, 0, from_vector<int64_t>(idx, {(int64_t)idx.size()}).to(logp.device()));
  };
  return {(is_d * gain + (1.0 - is_d) * loss_of_bad).mean(), pick(di), pick(ui), z};
}

}  // namespace nanorlhf::rlhf
