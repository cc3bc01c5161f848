// `nanorlhf dpo`: DPO (rlhf/trainers/dpo.h) driven by --config/--set.
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/dpo.h"

namespace nanorlhf::cli {

void setup_dpo(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::dpo_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::dpo_schema());
    if (!build_config(c, *flags)) return;
    rlhf::run_dpo(c);
    std::printf("wrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt\n",
                c.str("out").c_str());
  });
}

}  // namespace nanorlhf::cli
