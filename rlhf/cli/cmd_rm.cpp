// `nanorlhf rm`: train the Bradley-Terry reward model on preference pairs (rlhf/trainers/reward_model.h).
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/reward_model.h"

namespace nanorlhf::cli {

void setup_rm(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::reward_model_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::reward_model_schema());
    if (!build_config(c, *flags)) return;
    rlhf::RewardModelResult r = rlhf::run_reward_model(c);
    std::printf("rm: %zu steps; final train loss %.4f", r.losses.size(), r.losses.empty() ? 0.0 : r.losses.back());
    if (r.eval.pairs > 0)
      std::printf("; held-out accuracy %.3f, rm_accuracy %.3f (vs the noiseless oracle, %lld pairs)", r.eval.accuracy,
                  r.eval.rm_accuracy, (long long)r.eval.oracle_pairs);
    std::printf("\nwrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl\n", r.run_dir.c_str());
  });
}

}  // namespace nanorlhf::cli
