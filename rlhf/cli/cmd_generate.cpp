// `nanorlhf generate`: samples completions from a run directory's model (chat template or raw text).
#include <cstdio>
#include <memory>

#include "nn/generation.h"
#include "rlhf/cli/config_flags.h"
#include "rlhf/data.h"
#include "rlhf/checkpoints.h"

namespace nanorlhf::cli {

void setup_generate(CLI::App &cmd) {
  struct Args {
    std::string checkpoint, prompts_file, output, device = "cpu";
    std::vector<std::string> prompts;
    int64_t max_new_tokens = 64, top_k = 0, seed = 0, num_samples = 1;
    double temperature = 1.0, top_p = 1.0;
    bool greedy = false, raw = false;
  };
  auto a = std::make_shared<Args>();
  cmd.add_option("--checkpoint", a->checkpoint, "run directory (model.safetensors, config.json, tokenizer.json) or Hugging Face GPT-2 folder")->required();
  auto *p = cmd.add_option("-p,--prompt", a->prompts, "a prompt (repeatable)");
  auto *f = cmd.add_option("--prompts", a->prompts_file, "JSONL file of {\"prompt\": ...}");
  p->excludes(f);
  cmd.add_option("-n,--max-new-tokens", a->max_new_tokens, "tokens to generate per prompt")->capture_default_str();
  cmd.add_option("-t,--temperature", a->temperature, "sampling temperature (> 0)")->capture_default_str();
  cmd.add_option("--top-k", a->top_k, "keep the k most likely tokens; 0 = off")->capture_default_str();
  cmd.add_option("--top-p", a->top_p, "nucleus sampling mass in (0, 1]; 1 = off")->capture_default_str();
  cmd.add_flag("--greedy", a->greedy, "argmax decoding");
  cmd.add_option("--seed", a->seed, "sampling seed")->capture_default_str();
  cmd.add_option("--num-samples", a->num_samples, "samples per prompt")->capture_default_str()->check(CLI::PositiveNumber);
  cmd.add_flag("--raw", a->raw, "continue the text as is (<|bos|> + text) instead of the chat template");
  cmd.add_option("-o,--output", a->output, "also write {\"prompt\", \"completion\"} JSONL here");
  cmd.add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.callback([a] {
    std::vector<std::string> prompts = a->prompts;
    if (!a->prompts_file.empty())
      for (auto &ex : rlhf::read_prompts_jsonl(a->prompts_file)) prompts.push_back(ex.prompt);
    if (prompts.empty()) prompts.push_back("");  // unconditional samples from <|bos|>
    rlhf::LoadedModel m = rlhf::load_run<nn::GPT>(a->checkpoint, Device::parse(a->device));
    const nn::Tokenizer &tok = m.tokenizer;

    std::vector<std::vector<int64_t>> ids;
    std::vector<std::string> shown;
    for (const auto &pr : prompts)
      for (int64_t s = 0; s < a->num_samples; ++s) {
        std::vector<int64_t> x;
        if (a->raw || pr.empty()) {
          x = {tok.bos_id()};
          auto t = tok.encode(pr, /*allow_special=*/true);
          if (!t.empty() && t[0] == tok.bos_id()) x.clear();
          x.insert(x.end(), t.begin(), t.end());
        } else {
          x = tok.encode_prompt(pr);
        }
        ids.push_back(std::move(x));
        shown.push_back(pr);
      }
    nn::GenerationConfig g;
    g.max_new_tokens = a->max_new_tokens;
    g.temperature = a->temperature;
    g.top_k = a->top_k;
    g.top_p = a->top_p;
    g.greedy = a->greedy;
    g.seed = uint64_t(a->seed);
    nn::GenerationOutput out = nn::generate(*m.model, ids, g, tok.eos_id(), tok.pad_id());

    const auto resp = out.response_ids.to_vector<int64_t>();
    const auto mask = out.response_mask.to_vector<float>();
    const int64_t N = out.response_ids.size(1);
    std::vector<nlohmann::json> rows;
    for (size_t b = 0; b < ids.size(); ++b) {
      std::vector<int64_t> y;
      for (int64_t t = 0; t < N && mask[b * N + t] > 0; ++t)
        if (resp[b * N + t] != tok.eos_id()) y.push_back(resp[b * N + t]);
      const std::string text = tok.decode(y);
      std::printf("### prompt: %s\n%s%s\n\n", shown[b].empty() ? "(none: from <|bos|>)" : shown[b].c_str(), text.c_str(),
                  out.finished[b] ? "" : " [no <|eos|>]");
      rows.push_back({{"prompt", shown[b]}, {"completion", text}, {"finished", bool(out.finished[b])}});
    }
    if (!a->output.empty()) {
      rlhf::write_jsonl(a->output, rows);
      std::printf("wrote %s (%zu completions)\n", a->output.c_str(), rows.size());
    }
  });
}

}  // namespace nanorlhf::cli
