// The config flags of every config-driven command, and the key flags read as config keys.
#include "rlhf/cli/config_flags.h"

#include <cstdio>

namespace nanorlhf::cli {

void add_config_flags(CLI::App &cmd, ConfigFlags &flags) {
  cmd.add_option("-c,--config", flags.file, "JSON config file (nested or flat dotted keys)");
  cmd.add_option("-s,--set", flags.sets, "override one key: --set key=value (repeatable, applied after --config)")
      ->allow_extra_args(false);
  cmd.add_flag("--show-config", flags.show, "print the resolved config as JSON and exit");
  cmd.add_flag("--list-keys", flags.list, "list every config key with its type, default and help, and exit");
  cmd.allow_extras();  // every config key is also a flag: --beta 0.1
}

bool build_config(rlhf::Config &config, const ConfigFlags &flags, const std::vector<std::string> &key_flags,
                  const std::string &command) {
  if (flags.list) {
    std::printf("%s", config.help_text().c_str());
    return false;
  }
  if (!flags.file.empty()) config.load_file(flags.file);
  for (const auto &s : flags.sets) config.set(s);
  rlhf::apply_key_flags(config, key_flags, command);
  if (flags.show) {
    std::printf("%s\n", config.resolved().dump(2).c_str());
    return false;
  }
  return true;
}

}  // namespace nanorlhf::cli
