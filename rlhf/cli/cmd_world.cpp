// `nanorlhf world`: writes the default synthetic world (rlhf/world.h) as JSONL files to a folder.
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/world.h"

namespace nanorlhf::cli {

namespace {

std::vector<rlhf::ConfigKey> world_schema() {
  const rlhf::WorldConfig d;
  return {
      {"out", "data", "folder to write pretrain.jsonl, sft.jsonl, prompts.jsonl, eval_prompts.jsonl, world.json"},
      {"seed", (int64_t)d.seed, "seed of the world (same seed -> byte-identical files)", 0.0},
      {"n_entities", d.n_entities, "entities in the knowledge base (of a pool of 32 names)", 1.0, 32.0},
      {"unknown_fraction", d.unknown_fraction, "share of facts the base does not know", 0.0, 1.0},
      {"n_pretrain_docs", d.n_pretrain_docs, "documents of web text in pretrain.jsonl", 1.0},
      {"pretrain_good_fraction", d.pretrain_good_fraction, "share of good responses in the web text", 0.0, 1.0},
      {"pretrain_fact_doc_fraction", d.pretrain_fact_doc_fraction, "share of plain fact documents", 0.0, 1.0},
      {"pretrain_multi_turn_fraction", d.pretrain_multi_turn_fraction, "share of two-turn chats", 0.0, 1.0},
      {"n_sft", d.n_sft, "SFT demonstrations", 1.0},
      {"sft_multi_turn_fraction", d.sft_multi_turn_fraction, "share of two-turn demonstrations", 0.0, 1.0},
      {"sft_kinds", d.sft_kinds, "prompt kinds the demonstrations cover (fact, unknown_fact, greet, count, repeat, harmful)"},
      {"sft_slip_fraction", d.sft_slip_fraction, "share of demonstrations ending with a filler sentence", 0.0, 1.0},
      {"n_prompts", d.n_prompts, "preference / RL prompts", 1.0},
      {"n_eval_prompts", d.n_eval_prompts, "evaluation prompts", 1.0},
      {"eval_holdout_fraction", d.eval_holdout_fraction, "share of distinct prompts kept for evaluation", 0.0, 0.9},
  };
}

}  // namespace

void setup_world(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  auto out = std::make_shared<std::string>();
  auto seed = std::make_shared<int64_t>(-1);
  cmd.add_option("-o,--out", *out, "output folder (same as --set out=...)");
  cmd.add_option("--seed", *seed, "world seed (same as --set seed=...)");
  add_config_flags(cmd, *flags);
  cmd.callback([flags, out, seed] {
    rlhf::Config c(world_schema());
    if (!out->empty()) c.set("out=" + *out);
    if (*seed >= 0) c.set("seed=" + std::to_string(*seed));
    if (!build_config(c, *flags)) return;
    rlhf::WorldConfig w;
    w.seed = uint64_t(c.integer("seed"));
    w.n_entities = int(c.integer("n_entities"));
    w.unknown_fraction = c.num("unknown_fraction");
    w.n_pretrain_docs = int(c.integer("n_pretrain_docs"));
    w.pretrain_good_fraction = c.num("pretrain_good_fraction");
    w.pretrain_fact_doc_fraction = c.num("pretrain_fact_doc_fraction");
    w.pretrain_multi_turn_fraction = c.num("pretrain_multi_turn_fraction");
    w.n_sft = int(c.integer("n_sft"));
    w.sft_multi_turn_fraction = c.num("sft_multi_turn_fraction");
    w.sft_kinds = c.str("sft_kinds");
    w.sft_slip_fraction = c.num("sft_slip_fraction");
    w.n_prompts = int(c.integer("n_prompts"));
    w.n_eval_prompts = int(c.integer("n_eval_prompts"));
    w.eval_holdout_fraction = c.num("eval_holdout_fraction");
    rlhf::World world = rlhf::make_world(w);
    rlhf::write_world(world, c.str("out"));
    std::printf("wrote %s/: pretrain.jsonl (%zu docs), sft.jsonl (%zu), prompts.jsonl (%zu), eval_prompts.jsonl (%zu), "
                "world.json (%zu entities)\n",
                c.str("out").c_str(), world.pretrain.size(), world.sft.size(), world.prompts.size(),
                world.eval_prompts.size(), world.kb.entities.size());
  });
}

}  // namespace nanorlhf::cli
