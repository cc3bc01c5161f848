// `nanorlhf preferences`: sample K responses per prompt from the SFT policy and label pairs with the
// noisy oracle (rlhf/trainers/preferences.h).
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/preferences.h"

namespace nanorlhf::cli {

void setup_preferences(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::preferences_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::preferences_schema());
    if (!build_config(c, *flags)) return;
    rlhf::PreferencesResult r = rlhf::run_preferences(c);
    std::printf("preferences: %lld train pairs -> %s, %lld held-out pairs -> %s\n", (long long)r.train_pairs,
                r.train_path.c_str(), (long long)r.heldout_pairs, r.heldout_path.c_str());
  });
}

}  // namespace nanorlhf::cli
