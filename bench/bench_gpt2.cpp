// nanorlhf at GPT-2's shape (124M parameters by default: vocab 50257, ctx 1024, d 768, 12 layers, 12
// heads, tied head; random weights), one measurement per process so that its peak RSS is its own,
// the same computation as bench/anchors/torch_gpt2.py (bench/run_gpt2_bench.sh runs both):
//   dpo       one DPOTrainer step (sigmoid loss, beta 0.1, AdamW, clip 1.0) on `pairs` pairs of
//             seq_len tokens, prompt_len of them prompt; the reference's log-probs are computed
//             before the first step, as DPOTrainer does (TRL's precompute_ref_log_probs)
//   generate  greedy decoding with the KV cache: `batch` prompts of prompt_len tokens, new_tokens each
//   train     one pretraining step (nn::lm_loss, backward, AdamW) on batch x seq_len tokens
// One untimed warm-up (it allocates AdamW's moments; its loss is first_loss), then the best of
// --steps. Prints one JSON line: {"impl": "nanorlhf", "mode": ..., the configuration, "params": ...,
// "ms": best, "peak_rss_MB": ..., "setup_rss_MB": the peak once the model (and reference) exist}.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <omp.h>

#include "nn/generation.h"
#include "nn/losses.h"
#include "nn/optim.h"
#include "rlhf/checkpoints.h"
#include "rlhf/trainers/dpo.h"

using namespace nanorlhf;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // KiB on Linux
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<int64_t> random_ids(int64_t n, int64_t V) {
  const std::vector<int64_t> v = randint(0, V - 1, {n}).to_vector<int64_t>();  // never V-1, the eos
  return v;
}

}  // namespace

int run(int argc, char **argv) {
  if (argc < 2 || (std::strcmp(argv[1], "dpo") && std::strcmp(argv[1], "generate") && std::strcmp(argv[1], "train"))) {
    std::fprintf(stderr, "usage: bench_gpt2 dpo|generate|train [--key value ...]\n");
    return 2;
  }
  const std::string mode = argv[1];
  std::map<std::string, int64_t> o = {{"vocab", 50257}, {"ctx", 1024},     {"d_model", 768},   {"n_layer", 12},
                                      {"n_head", 12},   {"steps", 3},      {"pairs", 2},       {"seq_len", 256},
                                      {"prompt_len", 64}, {"batch", 8},    {"new_tokens", 64}};
  if (mode == "generate") o["prompt_len"] = 32;
  if (mode == "train") o["batch"] = 4;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = std::string(argv[i]).substr(2);
    if (!o.count(k)) {
      std::fprintf(stderr, "bench_gpt2: unknown flag %s\n", argv[i]);
      return 2;
    }
    o[k] = std::stoll(argv[i + 1]);
  }
  const int64_t V = o["vocab"];
  manual_seed(0);
  nn::GPT model({.vocab = V, .ctx = o["ctx"], .d_model = o["d_model"], .n_layer = o["n_layer"], .n_head = o["n_head"],
                 .dropout = 0.0, .tie_weights = true});
  nlohmann::json out = {{"impl", "nanorlhf"}, {"mode", mode}, {"threads", omp_get_max_threads()},
                        {"params", model.num_parameters()}};
  const std::map<std::string, std::vector<std::string>> used = {
      {"dpo", {"pairs", "seq_len", "prompt_len"}}, {"generate", {"batch", "prompt_len", "new_tokens"}},
      {"train", {"batch", "seq_len"}}};
  for (const char *k : {"vocab", "ctx", "d_model", "n_layer", "n_head", "steps"}) out[k] = o[k];
  for (const std::string &k : used.at(mode)) out[k] = o[k];
  out["setup_rss_MB"] = 0.0;  // set below, once the model (and reference) exist
  double best = 1e30;
  const int64_t steps = o["steps"];

  if (mode == "dpo") {
    auto ref = rlhf::frozen_copy(model);
    std::vector<rlhf::PreferencePair> pairs(static_cast<size_t>(o["pairs"]));
    const int64_t P = o["prompt_len"], R = o["seq_len"] - P;
    for (auto &p : pairs) p.prompt_ids = random_ids(P, V), p.chosen_ids = random_ids(R, V), p.rejected_ids = random_ids(R, V);
    rlhf::DPOConfig cfg;
    cfg.batch_size = o["pairs"];
    cfg.loop.steps = steps + 1;
    cfg.optim = rlhf::policy_optim(1e-6);
    model.train();
    out["setup_rss_MB"] = peak_rss_mb();
    rlhf::DPOTrainer tr(model, ref.get(), pairs, /*pad_id=*/V - 1, cfg);
    std::vector<size_t> idx(pairs.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    for (int64_t s = 0; s <= steps; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      const rlhf::Metrics m = tr.step(idx);
      if (s > 0) best = std::min(best, seconds_since(t0));
      if (s == 0) out["first_loss"] = m.at("loss");  // log 2: the policy is its reference
    }
    out["tokens_per_s"] = double(2 * o["pairs"] * o["seq_len"]) / best;
  } else if (mode == "generate") {
    model.eval();
    std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(o["batch"]));
    for (auto &p : prompts) p = random_ids(o["prompt_len"], V);
    out["setup_rss_MB"] = peak_rss_mb();
    nn::GenerationConfig g{.max_new_tokens = o["new_tokens"], .greedy = true, .use_cache = true};
    double tokens = 0;
    for (int64_t s = 0; s <= steps; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      nn::GenerationOutput r = nn::generate(model, prompts, g, /*eos_id=*/V - 1, /*pad_id=*/V - 1);
      if (s > 0) best = std::min(best, seconds_since(t0));
      tokens = r.response_mask.sum().item();
    }
    out["generated_tokens"] = tokens;
    out["tokens_per_s"] = tokens / best;
  } else {
    model.train();
    out["setup_rss_MB"] = peak_rss_mb();
    optim::AdamW opt(model.parameters(), {.lr = 3e-4});
    const int64_t B = o["batch"], T = o["seq_len"];
    Tensor x = randint(0, V, {B, T}), y = randint(0, V, {B, T});
    for (int64_t s = 0; s <= steps; ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      Tensor loss = nn::lm_loss(model, x, y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (s > 0) best = std::min(best, seconds_since(t0));
      if (s == 0) out["first_loss"] = loss.item();  // ~log V at this init
    }
    out["tokens_per_s"] = double(B * T) / best;
  }
  out["ms"] = best * 1e3;
  out["peak_rss_MB"] = peak_rss_mb();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench_gpt2: error: %s\n", e.what());
    return 1;
  }
}
