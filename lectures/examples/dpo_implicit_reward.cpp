// Lecture 06 (DPO): the DPO loss and the implicit reward beta*log(pi/pi_ref) on hand-made
// sequence log-probs, for several beta. Run: ./build/example_dpo_implicit_reward
#include <cstdio>

#include "rlhf/objectives.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

int main() {
  // Three pairs: summed log-probs of y_w and y_l under the policy and under the frozen reference.
  Tensor lc = tensor({-10.0, -12.0, -8.0}), lr = tensor({-14.0, -11.0, -9.0});      // log pi(y_w), log pi(y_l)
  Tensor rlc = tensor({-11.0, -12.5, -8.0}), rlr = tensor({-13.0, -11.5, -8.5});    // log pi_ref(y_w), log pi_ref(y_l)
  // h = log-ratio of y_w minus log-ratio of y_l
  Tensor h = (lc - rlc) - (lr - rlr);
  std::printf("pair:                         1        2        3\n");
  std::printf("log pi/pi_ref (y_w):    "); for (double v : (lc - rlc).to_vector<double>()) std::printf(" %+8.3f", v);
  std::printf("\nlog pi/pi_ref (y_l):    "); for (double v : (lr - rlr).to_vector<double>()) std::printf(" %+8.3f", v);
  std::printf("\nh (difference):         "); for (double v : h.to_vector<double>()) std::printf(" %+8.3f", v);
  std::printf("\n\n%6s %9s %9s %9s %9s %9s   %s\n", "beta", "loss", "r_w", "r_l", "margin", "accuracy",
              "per-pair weight sigma(-beta h)");
  for (double beta : {0.01, 0.1, 0.5, 1.0, 5.0}) {
    PreferenceLoss d = dpo_loss(lc, lr, rlc, rlr, beta);
    double acc = (d.chosen_rewards > d.rejected_rewards).to(kFloat32).mean().item();
    std::printf("%6.2f %9.4f %+9.4f %+9.4f %+9.4f %9.2f  ", beta, d.loss.item(), d.chosen_rewards.mean().item(),
                d.rejected_rewards.mean().item(), (d.chosen_rewards - d.rejected_rewards).mean().item(), acc);
    for (double v : sigmoid(-h * beta).to_vector<double>()) std::printf(" %.3f", v);
    std::printf("\n");
  }
  std::printf("\nbeta = 0.1 with cDPO label smoothing 0.1, and IPO (tau = 0.1) on the same pairs:\n");
  std::printf("  cDPO loss %.4f   IPO loss %.4f (target h = 1/(2 tau) = 5)\n",
              dpo_loss(lc, lr, rlc, rlr, 0.1, 0.1).loss.item(), ipo_loss(lc, lr, rlc, rlr, 0.1).loss.item());

  // The gradient pushes log pi(y_w) up and log pi(y_l) down, each pair weighted by sigma(-beta h).
  Tensor lc_p = lc.detach().requires_grad_(true), lr_p = lr.detach().requires_grad_(true);
  dpo_loss(lc_p, lr_p, rlc, rlr, 0.1).loss.backward();
  std::printf("\nbeta 0.1: dL/dlog pi(y_w) ="); for (double v : lc_p.grad().to_vector<double>()) std::printf(" %+.4f", v);
  std::printf("\n          dL/dlog pi(y_l) ="); for (double v : lr_p.grad().to_vector<double>()) std::printf(" %+.4f", v);
  std::printf("\n");
  return 0;
}
