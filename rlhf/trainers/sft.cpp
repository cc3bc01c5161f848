// Supervised fine-tuning: demonstrations tokenized with the chat template and an assistant-only loss
// mask, seeded epochs of shuffled batches in the shared training loop, samples and the checkpoint.
#include "rlhf/trainers/sft.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "nn/losses.h"
#include "rlhf/batching.h"
#include "rlhf/checkpoints.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/objectives.h"
#include "rlhf/rollout.h"
#include "rlhf/run_dir.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

const OptionTable<SFTConfig> &sft_options() {
  using O = SFTConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = training_options<O>();
    t.add("data", &O::data, "demonstrations: JSONL of {\"prompt\",\"completion\"} or {\"messages\": [...]}")
        .add("init", &O::init, "pretraining run directory (model.safetensors, config.json, tokenizer.json) or Hugging Face GPT-2 folder")
        .add("out", &O::out, "run directory")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("resume", &O::resume, kResumeHelp)
        .add("truncate", &O::truncate, "cut demonstrations longer than the context instead of failing")
        .add("samples", &O::samples, "greedy samples written to samples.txt at the end", Range::at_least(0))
        .add("sample_tokens", &O::sample_tokens, "max new tokens per sample", Range::at_least(1));
    return t;
  }();
  return t;
}

SftBatch make_sft_batch(const std::vector<SftTokens> &examples, const std::vector<size_t> &rows, int64_t pad_id,
                        Device device) {
  std::vector<std::vector<int64_t>> seqs;
  std::vector<std::vector<float>> masks;
  for (size_t r : rows) {
    seqs.push_back(examples[r].ids);
    masks.push_back(examples[r].loss_mask);
  }
  TokenBatch tb = pad_batch(seqs, masks, pad_id, /*left_pad=*/false);
  return {from_vector<int64_t>(tb.input_ids, {tb.batch, tb.seq}).to(device),
          from_vector<float>(tb.attention_mask, {tb.batch, tb.seq}).to(device),
          from_vector<float>(tb.loss_mask, {tb.batch, tb.seq}).to(device)};
}

// Right padding sits after every real token, so a causal model needs no attention mask here: the
// logits of real positions are those of the unpadded rows.
Tensor sft_batch_loss(const nn::GPT &model, const SftBatch &batch) {
  const int64_t T = batch.input_ids.size(1);
  Tensor lp = nn::token_logprobs(model, batch.input_ids, Tensor(), batch.loss_mask);  // [B, T-1]: token t+1
  return sft_loss(lp, batch.loss_mask.narrow(1, 1, T - 1));
}

namespace {

// Greedy answers to the first user turns of the data, for a look at what the model learned.
std::string greedy_samples(nn::GPT &model, const nn::Tokenizer &tok, const std::vector<SftExample> &data, int64_t n,
                           int64_t max_new) {
  std::vector<std::string> prompts;
  for (const auto &ex : data) {
    if ((int64_t)prompts.size() >= n) break;
    if (!ex.messages.empty() && ex.messages[0].role == "user") prompts.push_back(ex.messages[0].content);
  }
  if (prompts.empty()) return "";
  int64_t longest = 0;
  for (const auto &p : prompts) longest = std::max<int64_t>(longest, (int64_t)tok.encode_prompt(p).size());
  nn::GenerationConfig g{.max_new_tokens = std::min<int64_t>(max_new, model.config.ctx - longest), .greedy = true};
  if (g.max_new_tokens <= 0) return "";
  Rollout r = sample_responses(model, tok, prompts, g);
  std::string s;
  for (size_t i = 0; i < prompts.size(); ++i)
    s += fmt::format("[{}] user: {}\n    assistant: {}{}\n", i + 1, prompts[i], r.responses[i],
                     r.gen.finished[i] ? "" : " [no <|eos|>]");
  return s;
}

}  // namespace

SftResult run_sft(const SFTConfig &cfg, bool quiet) {
  const Device dev = Device::parse(cfg.device);
  LoadedModel init = load_run<nn::GPT>(cfg.init, dev);
  nn::GPT &model = *init.model;
  const nn::Tokenizer &tok = init.tokenizer;
  check_accumulation("sft", cfg.batch_size, cfg.loop.gradient_accumulation_steps, "demonstrations (batch_size)");
  const int64_t micro = cfg.batch_size / cfg.loop.gradient_accumulation_steps;
  nn::check_fits_in_memory(nn::training_step_bytes(model.config, micro, model.config.ctx),
                           fmt::format("sft: a micro-batch of {} demonstrations (batch_size {} / gradient_accumulation_steps "
                                       "{}) x ctx {} tokens", micro, cfg.batch_size,
                                       cfg.loop.gradient_accumulation_steps, model.config.ctx));
  std::vector<SftExample> data = read_sft_jsonl(cfg.data);
  NR_CHECK(!data.empty(), "{}: no demonstrations", cfg.data);
  std::vector<SftTokens> examples;
  examples.reserve(data.size());
  for (const auto &ex : data) {
    examples.push_back(encode_sft(tok, ex, model.config.ctx, cfg.truncate));
    const auto &m = examples.back().loss_mask;
    NR_CHECK(std::find(m.begin() + 1, m.end(), 1.0f) != m.end(), "{}: no assistant token to train on{}", ex.source,
             cfg.truncate ? " (truncated to the context?)" : "");
  }

  json resolved = sft_options().resolved(cfg);
  resolved["model"] = model.config.to_json();
  resolved["init_model"] = init.config.value("model", json::object());
  RunDir run(cfg.out, cfg.overwrite, cfg.resume);
  run.write_config(resolved);

  manual_seed(cfg.seed);  // dropout, if any
  model.train();
  optim::Optimization opt(model, cfg.optim, cfg.loop.steps);
  SftResult res;
  res.run_dir = cfg.out;
  res.examples = (int64_t)examples.size();
  EpochSampler batches(examples.size(), (size_t)cfg.batch_size, cfg.seed, ShortBatch::kEndsEpoch);

  TrainState state;
  state.add("model", model).add("optimizer", opt).add("batches", batches).add("losses", res.losses);
  TrainingLoop loop{.task = "sft", .options = cfg.loop, .shown = {"loss", "lr"}, .last_value = {"lr", "epoch"},
                    .quiet = quiet, .state = &state};
  // The tokens the loss averages over: the assistant tokens after the first position.
  auto target_tokens = [&](const std::vector<size_t> &rows) {
    double n = 0;
    for (size_t r : rows) n += std::accumulate(examples[r].loss_mask.begin() + 1, examples[r].loss_mask.end(), 0.0);
    return n;
  };
  run_training_loop(loop, run, [&](int64_t step) {
    // 1. a batch of demonstrations; 2. the loss on its assistant tokens, micro-batch by micro-batch,
    //    each weighted by its share of the batch's tokens; 3. one optimizer step.
    const std::vector<size_t> rows = batches.next();
    const double tokens = target_tokens(rows);
    AccumulatedMetrics acc;
    for (const std::vector<size_t> &part : micro_batches(rows, cfg.loop.gradient_accumulation_steps)) {
      SftBatch batch = make_sft_batch(examples, part, tok.pad_id(), dev);
      const double w = share(target_tokens(part), tokens);
      Tensor loss = sft_batch_loss(model, batch);
      (loss * w).backward();
      acc.add("loss", loss.item(), w);
      acc.add("tokens", (double)batch.input_ids.numel(), 1.0);
    }
    const Metrics m = acc.result();  // over every rank
    const double l = m.at("loss");
    optim::Optimization::Stats st = opt.step(step);
    res.losses.push_back(l);
    return StepOutput{{{"loss", l}, {"lr", st.lr}, {"grad_norm", st.grad_norm},
                       {"epoch", double((step + 1) * cfg.batch_size) / double(examples.size())}},
                      (int64_t)m.at("tokens")};
  });
  model.eval();
  run.write_text("samples.txt", greedy_samples(model, tok, data, cfg.samples, cfg.sample_tokens));
  save_run(run.root(), model, tok, resolved, {{"step", cfg.loop.steps}, {"stage", "sft"}});
  run.commit();
  return res;
}

}  // namespace nanorlhf::rlhf
