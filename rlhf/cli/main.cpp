// The `nanorlhf` program: one subcommand per stage of the registry (rlhf/stages.h), each taking
// its config from --config, --set and --key flags, plus `generate` and `tokenizer`. User errors
// print "error: <message>" and exit 1; nothing a user types crashes the program.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include <omp.h>
#include <unistd.h>

#include <algorithm>

#include "nn/distributed.h"
#include "rlhf/cli/config_flags.h"
#include "rlhf/stages.h"

namespace {

using nanorlhf::rlhf::Config;
using nanorlhf::rlhf::Stage;

void setup_stage(CLI::App &cmd, const Stage &st) {
  auto flags = std::make_shared<nanorlhf::cli::ConfigFlags>();
  nanorlhf::cli::add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (each also a flag: --key value):\n" + Config(st.schema()).help_text());
  cmd.callback([flags, &st, &cmd] {
    Config c(st.schema());
    if (!nanorlhf::cli::build_config(c, *flags, cmd.remaining(), st.name)) return;
    const std::string message = st.run(c, /*quiet=*/false).message;
    if (nanorlhf::dist::is_main()) std::printf("%s\n", message.c_str());
  });
}

// libgomp spins about 300k iterations at every barrier before it sleeps. When other processes share
// the cores, a spinning thread holds a core its partner needs: a two-thread training step ran more
// than 4x slower than one thread beside two busy processes, and a spin of 10^4 keeps the quiet
// machine's speed (bench/RESULTS.md). libgomp reads the setting when it loads, before main, so the
// program sets it and starts itself again; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
void bound_openmp_spin(char **argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  ::setenv("GOMP_SPINCOUNT", "10000", 1);
  ::execv("/proc/self/exe", argv);  // if that fails, run on with libgomp's default
}

// Under mpirun: ranks that share a machine share its cores, so each takes its share of OpenMP
// threads (one each on two cores) unless OMP_NUM_THREADS says otherwise; each rank says where it runs.
void start_ranks(int *argc, char ***argv) {
  nanorlhf::dist::init(argc, argv);
  if (nanorlhf::dist::world_size() == 1) return;
  if (!std::getenv("OMP_NUM_THREADS"))
    omp_set_num_threads(std::max(1, omp_get_max_threads() / nanorlhf::dist::local_size()));
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  std::fprintf(stderr, "nanorlhf: rank %d of world size %d on %s: %d OpenMP thread(s), the stage's device\n",
               nanorlhf::dist::rank(), nanorlhf::dist::world_size(), host, omp_get_max_threads());
}

struct FinalizeAtExit {
  ~FinalizeAtExit() { nanorlhf::dist::finalize(); }
};

}  // namespace

int main(int argc, char **argv) {
  bound_openmp_spin(argv);
  start_ranks(&argc, &argv);
  FinalizeAtExit finalize_at_exit;
  CLI::App app{"nanorlhf: a from-scratch C++ framework for learning RLHF (pretrain -> SFT -> reward model -> PPO/DPO)"};
  app.require_subcommand(1);
  app.fallthrough(false);
  app.footer(
      "\nExamples:\n"
      "  nanorlhf world --out data\n"
      "  nanorlhf pretrain --data data/pretrain.jsonl --out runs/pretrain --steps 2000\n"
      "  nanorlhf dpo --data runs/preferences/train.jsonl --beta 0.1 --out runs/dpo\n"
      "  nanorlhf generate --checkpoint runs/pretrain --prompt \"What color is the zorb?\"\n"
      "Run `nanorlhf <command> --help` for a command's flags; --list-keys lists its config keys.");
  for (const Stage &st : nanorlhf::rlhf::stages()) setup_stage(*app.add_subcommand(st.name, st.help), st);
  nanorlhf::cli::setup_generate(*app.add_subcommand("generate", "sample completions from a trained run directory"));
  nanorlhf::cli::setup_export(*app.add_subcommand("export", "write a run's policy as a Hugging Face GPT-2 folder"));
  nanorlhf::cli::setup_tokenizer(*app.add_subcommand("tokenizer", "byte-level BPE tokenizer tools (tokenizer train)"));
  std::string names;
  bool known = false;
  const CLI::App &all = app;
  for (const CLI::App *sub : all.get_subcommands([](const CLI::App *) { return true; })) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {  // CLI11 would only say "a subcommand is required"
    std::fprintf(stderr, "error: unknown command '%s'; commands: %s\n", argv[1], names.c_str());
    return 1;
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
    // One rank's error stops every rank, with its message (a rank waiting on it would hang).
    if (nanorlhf::dist::world_size() > 1) nanorlhf::dist::abort(std::string("error: ") + e.what(), 1);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
