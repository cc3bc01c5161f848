// `nanorlhf raft`: RAFT, reward-ranked fine-tuning (rlhf/trainers/raft.h) driven by --config/--set.
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/raft.h"

namespace nanorlhf::cli {

void setup_raft(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::raft_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::raft_schema());
    if (!build_config(c, *flags)) return;
    rlhf::run_raft(c);
    std::printf("wrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt\n",
                c.str("out").c_str());
  });
}

}  // namespace nanorlhf::cli
