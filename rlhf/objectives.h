// The lecture's equations, one function each. Trainers call these; they never re-derive them.
// Conventions: log-probs are float tensors; sequence-level inputs are [B]; token-level inputs are
// [B, T] with a mask [B, T] (1 = a response token that counts). Every returned loss is a mean
// over the batch (or over masked tokens) unless the comment says otherwise.
#pragma once
#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::rlhf {

// ---- Instruction tuning ----
Tensor sft_loss(const Tensor &token_logprobs, const Tensor &mask);

// ---- Reward model ----
Tensor bradley_terry_loss(const Tensor &r_chosen, const Tensor &r_rejected, double margin = 0.0);
Tensor bradley_terry_probability(const Tensor &r_chosen, const Tensor &r_rejected);

// ---- The KL-regularised objective ----
// kl: the KL estimate of each response token [B, T] (kl_k1 or kl_k3 of the policy's and the
// reference's log-probs), or of each sequence [B].
Tensor kl_penalized_rewards(const Tensor &score, const Tensor &kl, const Tensor &mask, double beta);
Tensor sequence_rlhf_reward(const Tensor &score, const Tensor &kl, double beta);
double adaptive_kl_beta(double beta, double observed_kl, double target_kl, int64_t n_steps, int64_t horizon);

// Missing-EOS penalty (N implementation details; TRL missing_eos_penalty): score [B], finished [B].
Tensor apply_missing_eos_penalty(const Tensor &score, const std::vector<bool> &finished, double penalty);

// ---- KL estimators (TRL's kl_estimator: "k1" or "k3") ----
Tensor kl_k1(const Tensor &logp, const Tensor &ref_logp);
Tensor kl_k3(const Tensor &logp, const Tensor &ref_logp);

// ---- REINFORCE ----
Tensor reinforce_loss(const Tensor &logp_sum, const Tensor &rewards, const Tensor &baseline);
Tensor rloo_advantages(const Tensor &rewards, int64_t k);
// The moving-average baseline b of REINFORCE, updated with each batch's mean reward.
double moving_average_baseline(double baseline, double batch_mean_reward, double decay);

// ---- PPO ----
struct GAEResult { Tensor advantages, returns; };
GAEResult gae(const Tensor &rewards, const Tensor &values, const Tensor &mask, double gamma, double lam);
Tensor masked_whiten(const Tensor &x, const Tensor &mask, bool shift_mean = true);
Tensor masked_mean(const Tensor &x, const Tensor &mask);
struct PPOPolicyLoss { Tensor loss, clipfrac, approx_kl, ratio_mean; };
PPOPolicyLoss ppo_policy_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &advantages, const Tensor &mask,
                              double clip_eps);
struct PPOValueLoss { Tensor loss, clipfrac; };
PPOValueLoss ppo_value_loss(const Tensor &values, const Tensor &old_values, const Tensor &returns, const Tensor &mask,
                            double clip_eps);
Tensor entropy_from_logits(const Tensor &logits);

// ---- Best-of-n ----
// KL(pi_bon || pi) of keeping the best of n samples: log n - (n-1)/n (an upper bound).
double best_of_n_kl(int64_t n);

// ---- GRPO (objectives_grpo.cpp) ----
// rewards [B G]: G samples of each prompt in consecutive rows. scale_rewards: "group", "batch", "none".
struct GRPOAdvantages { Tensor advantages, group_std; };  // [B G]; the std of each row's group [B G]
GRPOAdvantages grpo_advantages(const Tensor &rewards, int64_t num_generations, const std::string &scale_rewards);
struct GRPOLoss { Tensor loss, kl, clip_low, clip_high, clip_region; };  // kl and the clip ratios: masked means
// logp, old_logp, ref_logp, mask [B, T]; advantages [B]. loss_type: "grpo", "bnpo", "dr_grpo", "dapo".
// max_completion_length: dr_grpo's constant; num_items: dapo's token count of the whole global batch
// (0 = this batch's).
GRPOLoss grpo_loss(const Tensor &logp, const Tensor &old_logp, const Tensor &ref_logp, const Tensor &advantages,
                   const Tensor &mask, double epsilon_low, double epsilon_high, double beta, const std::string &loss_type,
                   int64_t max_completion_length, double num_items = 0);

// ---- Direct preference optimisation and kin ----
struct PreferenceLoss { Tensor loss, chosen_rewards, rejected_rewards; };
PreferenceLoss dpo_loss(const Tensor &logp_chosen, const Tensor &logp_rejected, const Tensor &ref_logp_chosen,
                        const Tensor &ref_logp_rejected, double beta, double label_smoothing = 0.0);
PreferenceLoss ipo_loss(const Tensor &logp_chosen, const Tensor &logp_rejected, const Tensor &ref_logp_chosen,
                        const Tensor &ref_logp_rejected, double tau);
PreferenceLoss slic_hinge_loss(const Tensor &logp_chosen, const Tensor &logp_rejected, const Tensor &ref_logp_chosen,
                               const Tensor &ref_logp_rejected, double beta);
PreferenceLoss simpo_loss(const Tensor &logp_chosen_sum, const Tensor &len_chosen, const Tensor &logp_rejected_sum,
                          const Tensor &len_rejected, double beta, double gamma);
Tensor rpo_nll(const Tensor &logp_chosen_sum, const Tensor &len_chosen);

// ---- KTO ----
// Unpaired examples: logp, ref_logp [B] (summed over each completion), desirable[i] the label of
// example i, z0 the reference point (kto_reference_point). Rewards are beta * (logp - ref_logp) of the
// desirable / undesirable examples, in batch order; kl is z0.
struct KTOLoss { Tensor loss, chosen_rewards, rejected_rewards, kl; };
Tensor kto_reference_point(const Tensor &kl_logp, const Tensor &kl_ref_logp);
KTOLoss kto_loss(const Tensor &logp, const Tensor &ref_logp, const std::vector<bool> &desirable, const Tensor &z0,
                 double beta, double desirable_weight, double undesirable_weight);

}  // namespace nanorlhf::rlhf
