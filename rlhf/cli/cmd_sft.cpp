// `nanorlhf sft`: supervised fine-tuning (rlhf/trainers/sft.h) driven by --config/--set.
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/sft.h"

namespace nanorlhf::cli {

void setup_sft(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::sft_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::sft_schema());
    if (!build_config(c, *flags)) return;
    rlhf::SftResult r = rlhf::run_sft(c);
    std::printf("sft: %zu steps on %lld demonstrations; final loss %.4f\n", r.losses.size(), (long long)r.examples,
                r.losses.empty() ? 0.0 : r.losses.back());
    std::printf("wrote %s/: model.safetensors, config.json, tokenizer.json, metrics.jsonl, samples.txt\n",
                r.run_dir.c_str());
  });
}

}  // namespace nanorlhf::cli
