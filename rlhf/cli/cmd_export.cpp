// `nanorlhf export`: a run directory's policy as a Hugging Face GPT-2 folder that transformers'
// GPT2LMHeadModel.from_pretrained and AutoTokenizer open (model.safetensors, config.json, and
// GPT-2's vocab.json + merges.txt when the run uses GPT-2's tokenizer).
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "nn/hf_gpt2.h"
#include "rlhf/checkpoints.h"
#include "rlhf/cli/config_flags.h"

namespace nanorlhf::cli {

void setup_export(CLI::App &cmd) {
  struct Args {
    std::string checkpoint, out;
    bool overwrite = false;
  };
  auto a = std::make_shared<Args>();
  cmd.add_option("--checkpoint", a->checkpoint, "run directory of a policy (sft, dpo, ppo, ...)")->required();
  cmd.add_option("-o,--out", a->out, "folder to write the Hugging Face GPT-2 checkpoint into")->required();
  cmd.add_flag("--overwrite", a->overwrite, "replace a checkpoint already in --out");
  cmd.callback([a] {
    namespace fs = std::filesystem;
    NR_CHECK(a->overwrite || !(fs::exists(fs::path(a->out) / "config.json") ||
                               fs::exists(fs::path(a->out) / "model.safetensors")),
             "export: {} already holds a checkpoint; pass --overwrite to replace it", a->out);
    rlhf::LoadedModel m = rlhf::load_run<nn::GPT>(a->checkpoint);
    nn::save_hf_gpt2(a->out, *m.model);
    if (m.tokenizer.is_gpt2()) m.tokenizer.save_folder(a->out);
    std::printf("wrote %s/: model.safetensors, config.json%s\n", a->out.c_str(),
                m.tokenizer.is_gpt2() ? ", vocab.json, merges.txt" : "");
    if (!m.tokenizer.is_gpt2())
      std::printf("note: the run uses nanorlhf's own tokenizer, which transformers cannot read; the model's ids are "
                  "those of %s/tokenizer.json\n", a->checkpoint.c_str());
  });
}

}  // namespace nanorlhf::cli
