// What every subcommand of the `nanorlhf` program shares: the --config/--set flags, the config
// they build, and the signature of a subcommand's set-up function (see the table in main.cpp).
#pragma once
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "rlhf/config.h"

namespace nanorlhf::cli {

// Adds the subcommand's options to `cmd` and sets its callback. Errors are thrown as exceptions;
// main prints "error: <message>" and exits 1.
using SetupFn = void (*)(CLI::App &cmd);

// --config FILE.json, repeated --set key=value, --show-config, --list-keys.
struct ConfigFlags {
  std::string file;
  std::vector<std::string> sets;
  bool show = false, list = false;
};
void add_config_flags(CLI::App &cmd, ConfigFlags &flags);

// The schema's defaults, then the file, then each --set in order. Returns false when --show-config
// or --list-keys printed what was asked and the command should stop.
bool build_config(rlhf::Config &config, const ConfigFlags &flags);

// The subcommands (one file each: cmd_<name>.cpp).
void setup_world(CLI::App &cmd);
void setup_tokenizer(CLI::App &cmd);
void setup_pretrain(CLI::App &cmd);
void setup_generate(CLI::App &cmd);

}  // namespace nanorlhf::cli
