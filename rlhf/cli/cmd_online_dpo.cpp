// `nanorlhf online_dpo`: iterative (online) DPO (rlhf/trainers/online_dpo.h) driven by --config/--set.
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/online_dpo.h"

namespace nanorlhf::cli {

void setup_online_dpo(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::online_dpo_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::online_dpo_schema());
    if (!build_config(c, *flags)) return;
    rlhf::run_online_dpo(c);
    std::printf("wrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt\n",
                c.str("out").c_str());
  });
}

}  // namespace nanorlhf::cli
