// Reward functions by name, their weights, and the verifier as a reward over a rollout.
#include "rlhf/rewards.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "rlhf/verifier.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace {

std::vector<std::string> split_list(const std::string &s) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size()) {
    size_t q = s.find(',', p);
    std::string item = s.substr(p, q == std::string::npos ? std::string::npos : q - p);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return out;
}

std::vector<double> weights_of(const RewardOptions &o, size_t n) {
  std::vector<std::string> w = split_list(o.reward_weights);
  if (w.empty()) return std::vector<double>(n, 1.0);
  if (w.size() != n)
    throw Error(fmt::format("reward_weights: {} weights '{}' for {} reward_funcs '{}'; give one per function",
                            w.size(), o.reward_weights, n, o.reward_funcs));
  std::vector<double> out;
  for (const auto &x : w) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(x, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (used != x.size() || !std::isfinite(v)) throw Error(fmt::format("reward_weights: '{}' is not a number", x));
    out.push_back(v);
  }
  return out;
}

}  // namespace

const std::vector<std::string> &reward_func_names() {
  static const std::vector<std::string> n = {"reward_model", "verifier"};
  return n;
}

void RewardOptions::validate() const {
  std::vector<std::string> names = split_list(reward_funcs);
  if (names.empty()) throw Error(fmt::format("reward_funcs is empty; valid: {}", fmt::join(reward_func_names(), ", ")));
  for (const auto &n : names)
    if (std::find(reward_func_names().begin(), reward_func_names().end(), n) == reward_func_names().end())
      throw Error(fmt::format("reward_funcs: unknown reward function '{}'; valid: {}", n,
                              fmt::join(reward_func_names(), ", ")));
  weights_of(*this, names.size());
}

bool RewardOptions::uses(const std::string &name) const {
  std::vector<std::string> names = split_list(reward_funcs);
  return std::find(names.begin(), names.end(), name) != names.end();
}

const OptionTable<RewardOptions> &reward_funcs_options() {
  static const OptionTable<RewardOptions> t = [] {
    OptionTable<RewardOptions> t;
    t.add("reward_funcs", &RewardOptions::reward_funcs,
          "training reward, comma-separated: reward_model (the learned reward), verifier (1 when a count, repeat or "
          "arithmetic answer is right and well formed, else 0), or both (TRL's name)")
        .add("reward_weights", &RewardOptions::reward_weights,
             "weights of reward_funcs, comma-separated, one per function; empty = all 1 (TRL's name)");
    return t;
  }();
  return t;
}

Tensor verifier_scores(const Rollout &r) {
  std::vector<double> s(r.responses.size(), 0.0);
  for (size_t i = 0; i < s.size(); ++i) s[i] = verifier_reward(r.prompts[i], r.responses[i], r.gen.finished[i]).value_or(0.0);
  return from_vector<double>(s, {(int64_t)s.size()}).to(kFloat32).to(r.gen.sequences.device());
}

Rewards make_rewards(const RewardOptions &o, const nn::ScalarModel *rm, const std::string &who) {
  try {
    o.validate();
  } catch (const Error &e) {
    throw Error(who + ": " + e.what());
  }
  std::vector<std::string> names = split_list(o.reward_funcs);
  std::vector<double> w = weights_of(o, names.size());
  std::vector<RewardTerm> terms;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "reward_model") {
      NR_CHECK(rm, "{}: reward_funcs names reward_model but reward_model is empty; give a reward model's run "
               "directory or use reward_funcs=verifier", who);
      terms.push_back({names[i], w[i], reward_model_fn(*rm)});
    } else {
      terms.push_back({names[i], w[i], verifier_scores});
    }
  }
  return Rewards(std::move(terms));
}

}  // namespace nanorlhf::rlhf
