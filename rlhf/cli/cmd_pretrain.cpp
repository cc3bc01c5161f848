// `nanorlhf pretrain`: the pretraining trainer (rlhf/trainers/pretrain.h) driven by --config/--set.
#include <cmath>
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/pretrain.h"

namespace nanorlhf::cli {

void setup_pretrain(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::pretrain_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::pretrain_schema());
    if (!build_config(c, *flags)) return;
    rlhf::PretrainResult r = rlhf::pretrain(c);
    std::printf("pretrain: %zu steps on %lld corpus tokens; final loss %.4f", r.losses.size(), (long long)r.tokens,
                r.losses.empty() ? NAN : r.losses.back());
    if (std::isfinite(r.eval_loss)) std::printf(", held-out loss %.4f", r.eval_loss);
    std::printf("\nwrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt\n",
                r.run_dir.c_str());
  });
}

}  // namespace nanorlhf::cli
