// The `nanorlhf` program: one table of subcommands, each set up by its own cmd_<name>.cpp. User
// errors print "error: <message>" and exit 1; nothing a user types crashes the program.
#include <cstdio>
#include <exception>
#include <string>

#include <unistd.h>

#include "rlhf/cli/common.h"

namespace nanorlhf::cli {  // first half of the alignment pipeline: cmd_{sft,preferences,rm,eval}.cpp
void setup_sft(CLI::App &cmd);
void setup_preferences(CLI::App &cmd);
void setup_rm(CLI::App &cmd);
void setup_eval(CLI::App &cmd);
void setup_pipeline(CLI::App &cmd);
}  // namespace nanorlhf::cli

namespace nanorlhf::cli {  // policy optimisation: cmd_{reinforce,ppo,dpo,raft,online_dpo}.cpp
void setup_reinforce(CLI::App &cmd);
void setup_ppo(CLI::App &cmd);
void setup_dpo(CLI::App &cmd);
void setup_raft(CLI::App &cmd);
void setup_online_dpo(CLI::App &cmd);
}  // namespace nanorlhf::cli

namespace {

struct Command {
  const char *name;
  const char *help;
  nanorlhf::cli::SetupFn setup;
};

// Add a subcommand here (and its cmd_<name>.cpp): sft, rm, ppo, dpo, eval, pipeline follow pretrain.
constexpr Command kCommands[] = {
    {"world", "write the default synthetic world's datasets (pretrain/sft/prompts/eval JSONL) to a folder",
     nanorlhf::cli::setup_world},
    {"tokenizer", "byte-level BPE tokenizer tools (tokenizer train)", nanorlhf::cli::setup_tokenizer},
    {"pretrain", "pretrain a GPT on a {\"text\"} JSONL corpus", nanorlhf::cli::setup_pretrain},
    {"generate", "sample completions from a trained run directory", nanorlhf::cli::setup_generate},
    {"sft", "supervised fine-tuning of a pretrained run on chat demonstrations", nanorlhf::cli::setup_sft},
    {"preferences", "sample K responses per prompt from the SFT policy and label pairs with the noisy oracle",
     nanorlhf::cli::setup_preferences},
    {"rm", "train the Bradley-Terry reward model on preference pairs", nanorlhf::cli::setup_rm},
    {"eval", "evaluate a policy against the SFT reference with the oracle", nanorlhf::cli::setup_eval},
    {"pipeline", "the whole pipeline from one config: world, pretrain, SFT, preferences, RM, REINFORCE, PPO, DPO, eval",
     nanorlhf::cli::setup_pipeline},
    {"reinforce", "REINFORCE (moving-average or RLOO baseline) on the reward model, KL to SFT",
     nanorlhf::cli::setup_reinforce},
    {"ppo", "PPO on the reward model: per-token KL penalty, GAE, clipped policy and value losses",
     nanorlhf::cli::setup_ppo},
    {"dpo", "DPO and kin (ipo, hinge/SLiC, simpo, cDPO label smoothing) on preference pairs",
     nanorlhf::cli::setup_dpo},
    {"raft", "RAFT: sample K per prompt, keep the best by the reward model, fine-tune on it", nanorlhf::cli::setup_raft},
    {"online_dpo", "iterative DPO: each round samples K, pairs best vs worst by the reward model, DPO from the last round",
     nanorlhf::cli::setup_online_dpo},
};

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"nanorlhf: a from-scratch C++ framework for learning RLHF (pretrain -> SFT -> reward model -> PPO/DPO)"};
  app.require_subcommand(1);
  app.fallthrough(false);
  app.footer(
      "\nExamples:\n"
      "  nanorlhf world --out data\n"
      "  nanorlhf pretrain --set data=data/pretrain.jsonl --set out=runs/pretrain --set steps=2000\n"
      "  nanorlhf generate --checkpoint runs/pretrain --prompt \"What color is the zorb?\"\n"
      "Run `nanorlhf <command> --help` for a command's flags; training commands list their config keys with --list-keys.");
  std::string names;
  for (const Command &c : kCommands) {
    c.setup(*app.add_subcommand(c.name, c.help));
    names += names.empty() ? c.name : std::string(", ") + c.name;
  }
  if (argc > 1 && argv[1][0] != '-') {  // CLI11 would only say "a subcommand is required"
    bool known = false;
    for (const Command &c : kCommands) known = known || std::string(argv[1]) == c.name;
    if (!known) {
      std::fprintf(stderr, "error: unknown command '%s'; commands: %s\n", argv[1], names.c_str());
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "error: %s\n", e.what());
    if (argc <= 1) std::fprintf(stderr, "commands: %s\n", names.c_str());
    std::fprintf(stderr, "run `%s --help` for usage\n", argc > 0 ? argv[0] : "nanorlhf");
    return 1;
  } catch (const std::exception &e) {
    std::fflush(stdout);
    if (::isatty(2)) std::fprintf(stderr, "\n");  // end a live progress line first
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
