// How a command that runs from a config takes its config: --config FILE.json, --set key=value,
// and every config key as a flag (--beta 0.1, --beta=0.1, --max-new-tokens 32), as TRL's and
// Hugging Face's argument parsers do; --show-config and --list-keys.
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "rlhf/config.h"

namespace nanorlhf::cli {

struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;
  bool show = false, list = false;
};
// Adds --config, --set, --show-config, --list-keys, and lets `cmd` take any other --key as a
// config key (rlhf::apply_key_flags reads them).
void add_config_flags(CLI::App &cmd, ConfigFlags &flags);

// The schema's defaults, then the file, then each --set, then the key flags, in that order.
// Returns false when --show-config or --list-keys printed what was asked and the command stops.
bool build_config(rlhf::Config &config, const ConfigFlags &flags, const std::vector<std::string> &key_flags,
                  const std::string &command);

// The subcommands with flags of their own (one file each: cmd_<name>.cpp).
void setup_tokenizer(CLI::App &cmd);
void setup_generate(CLI::App &cmd);
void setup_export(CLI::App &cmd);

}  // namespace nanorlhf::cli
