// Lecture 05 (PPO): one PPO update on a toy batch, printed term by term with the functions the
// PPO trainer calls (rlhf/objectives.h). Run: ./build/example_ppo_update_by_hand
// Two responses; row 0 has 4 tokens, row 1 ended after 3 (mask 0 afterwards).
#include <cstdio>
#include <string>

#include "rlhf/objectives.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

Tensor g_mask;  // [B, T]; masked entries (after the end of a response) print as "."

void show(const char *name, const Tensor &x) {
  std::vector<float> v = x.detach().contiguous().to_vector<float>(), m = g_mask.to_vector<float>();
  int64_t T = x.shape()[1];
  for (int64_t b = 0; b < x.shape()[0]; ++b) {
    std::printf("  %-26s row %lld:", b == 0 ? name : "", (long long)b);
    for (int64_t t = 0; t < T; ++t)
      m[b * T + t] != 0 ? std::printf(" %+8.4f", v[b * T + t]) : std::printf(" %8s", ".");
    std::printf("\n");
  }
}

int main() {
  const int64_t B = 2, T = 4;
  auto bt = [&](std::vector<float> v) { return from_vector(v, {B, T}); };
  Tensor mask = bt({1, 1, 1, 1, 1, 1, 1, 0});
  g_mask = mask;
  Tensor score = from_vector<float>({1.0f, -0.5f}, {B});                     // r_phi(x, y) from the reward model
  Tensor old_logp = bt({-1.2f, -0.7f, -2.0f, -0.3f, -0.9f, -1.5f, -0.4f, 0});  // log pi_old(y_t), at rollout time
  Tensor ref_logp = bt({-1.0f, -0.9f, -2.1f, -0.3f, -1.1f, -1.2f, -0.5f, 0});  // log pi_ref(y_t), the frozen SFT model
  Tensor old_values = bt({0.2f, 0.3f, 0.4f, 0.6f, -0.1f, -0.2f, -0.3f, 0});   // V_old(s_t) from the value head
  const double beta = 0.05, gamma = 1.0, lam = 0.95, eps = 0.2, eps_v = 0.2;

  std::printf("Rollout: row 0 has 4 response tokens, row 1 has 3 ('.' = after its end); RM scores %+.1f, %+.1f\n",
              score.to_vector<float>()[0], score.to_vector<float>()[1]);
  show("log pi_old(y_t)", old_logp);
  show("log pi_ref(y_t)", ref_logp);
  show("V_old(s_t)", old_values);
  std::printf("\nAdvantages (no gradient): beta %.2f, gamma %.2f, lambda %.2f\n", beta, gamma, lam);
  Tensor rewards = kl_penalized_rewards(score, kl_k1(old_logp, ref_logp), mask, beta);  // kl_t = log pi_old - log pi_ref
  show("r_t = -beta*kl_t (+score)", rewards);
  GAEResult g = gae(rewards, old_values, mask, gamma, lam);
  show("GAE advantage A_t", g.advantages);
  show("return R_t = A_t + V_t", g.returns);
  Tensor adv = masked_whiten(g.advantages, mask);
  show("whitened A_t", adv);

  // The update: the policy has moved since the rollout; pretend its new log-probs are these.
  Tensor logp = bt({-0.9f, -0.75f, -2.4f, -0.1f, -1.3f, -1.45f, -0.2f, 0});
  logp.requires_grad_(true);
  Tensor values = bt({0.5f, 0.35f, 0.1f, 0.7f, -0.15f, -0.6f, -0.25f, 0});
  values.requires_grad_(true);

  std::printf("\nPolicy loss, clip eps %.2f:\n", eps);
  Tensor ratio = exp(logp - old_logp);
  show("ratio rho_t", ratio * mask);
  show("-A_t * rho_t", -adv * ratio * mask);
  show("-A_t * clip(rho_t)", -adv * clamp(ratio, 1 - eps, 1 + eps) * mask);
  PPOPolicyLoss pg = ppo_policy_loss(logp, old_logp, adv, mask, eps);
  pg.loss.backward();
  show("dL/dlogp (0 = clipped)", logp.grad());
  std::printf("  ppo_policy_loss = %.5f   clipfrac = %.3f   approx_kl = %.5f   mean ratio = %.4f\n", pg.loss.item(),
              pg.clipfrac.item(), pg.approx_kl.item(), pg.ratio_mean.item());

  std::printf("\nValue loss, value clip %.2f:\n", eps_v);
  show("(V - R)^2", square(values - g.returns) * mask);
  show("(V_clip - R)^2", square(old_values + clamp(values - old_values, -eps_v, eps_v) - g.returns) * mask);
  PPOValueLoss vf = ppo_value_loss(values, old_values, g.returns, mask, eps_v);
  std::printf("  ppo_value_loss = %.5f   value clipfrac = %.3f\n", vf.loss.item(), vf.clipfrac.item());
  std::printf("\ntotal = pg + vf_coef * vf = %.5f + 0.1 * %.5f = %.5f\n", pg.loss.item(), vf.loss.item(),
              pg.loss.item() + 0.1 * vf.loss.item());
  return 0;
}
