// Supervised fine-tuning: demonstrations tokenized with the chat template and an assistant-only loss
// mask, seeded epochs of shuffled batches, AdamW with the shared schedule, samples and the checkpoint.
#include "rlhf/trainers/sft.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "nn/losses.h"
#include "rlhf/objectives.h"
#include "rlhf/rollout.h"
#include "rlhf/run_dir.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

std::vector<ConfigKey> sft_schema() {
  std::vector<ConfigKey> s = {
      {"data", "data/sft.jsonl", "demonstrations: JSONL of {\"prompt\",\"completion\"} or {\"messages\": [...]}"},
      {"init", "runs/pretrain", "pretraining run directory (model.safetensors, config.json, tokenizer.json)"},
      {"out", "runs/sft", "run directory"},
      {"truncate", false, "cut demonstrations longer than the context instead of failing"},
      {"samples", 6, "greedy samples written to samples.txt at the end", 0.0},
      {"sample_tokens", 48, "max new tokens per sample", 1.0},
  };
  for (auto &k : train_config_keys()) s.push_back(k);
  // Fine-tuning a pretrained model on a few hundred demonstrations: ~10 epochs at batch 16.
  set_default(s, "steps", 200);
  set_default(s, "lr", 5e-4);
  set_default(s, "warmup", 10);
  set_default(s, "weight_decay", 0.0);
  return s;
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
  Tensor logits = model.forward(batch.input_ids);                             // [B, T, V]
  Tensor lp = nn::token_logprobs(logits, batch.input_ids, batch.loss_mask);   // [B, T-1]: token t+1
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

SftResult run_sft(const Config &c, bool quiet) {
  const Device dev = Device::parse(c.str("device"));
  const OptimConfig ocfg = OptimConfig::from(c);
  const std::string data_path = c.str("data"), out = c.str("out");
  const uint64_t seed = uint64_t(c.integer("seed"));
  const int64_t B = c.integer("batch_size"), log_every = c.integer("log_every");

  LoadedModel init = load_gpt_run(c.str("init"), dev);
  nn::GPT &model = *init.model;
  const nn::Tokenizer &tok = init.tokenizer;
  std::vector<SftExample> data = read_sft_jsonl(data_path);
  NR_CHECK(!data.empty(), "{}: no demonstrations", data_path);
  std::vector<SftTokens> examples;
  examples.reserve(data.size());
  for (const auto &ex : data) {
    examples.push_back(encode_sft(tok, ex, model.config.ctx, c.flag("truncate")));
    const auto &m = examples.back().loss_mask;
    NR_CHECK(std::find(m.begin() + 1, m.end(), 1.0f) != m.end(), "{}: no assistant token to train on{}", ex.source,
             c.flag("truncate") ? " (truncated to the context?)" : "");
  }

  json resolved = c.resolved();
  resolved["model"] = model.config.to_json();
  resolved["init_model"] = init.config.value("model", json::object());
  RunDir run(out);
  run.write_config(resolved);

  manual_seed(seed);  // dropout, if any
  model.train();
  Optimization opt(model, ocfg);
  SftResult res;
  res.run_dir = out;
  res.examples = (int64_t)examples.size();

  // Epochs of seeded permutations; a batch never straddles two epochs' orders.
  std::vector<size_t> order;
  size_t cursor = 0;
  int64_t epoch = 0;
  auto next_rows = [&]() {
    std::vector<size_t> rows;
    while ((int64_t)rows.size() < B) {
      if (cursor == order.size()) {
        order = shuffled_indices(examples.size(), seed * 1000003ull + uint64_t(epoch++));
        cursor = 0;
      }
      rows.push_back(order[cursor++]);
      if (cursor == order.size() && (int64_t)examples.size() >= B) break;  // end of epoch: a short last batch
    }
    return rows;
  };

  Progress progress("sft", ocfg.steps, quiet ? nullptr : stderr);
  double win_loss = 0, win_norm = 0;
  int64_t win_n = 0, win_tokens = 0;
  auto t_log = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < ocfg.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    SftBatch batch = make_sft_batch(examples, next_rows(), tok.pad_id(), dev);
    Tensor loss = sft_batch_loss(model, batch);
    loss.backward();
    const double l = loss.item();
    NR_CHECK(std::isfinite(l), "sft step {}: the loss is {} (training diverged); try a smaller lr", step + 1, l);
    Optimization::Stats st = opt.step(step);
    res.losses.push_back(l);
    const int64_t ntok = batch.input_ids.numel();
    win_loss += l;
    win_norm += st.grad_norm;
    win_tokens += ntok;
    ++win_n;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.update(step + 1, {{"loss", l}, {"lr", st.lr}}, double(ntok) / std::max(dt, 1e-9));
    if ((step + 1) % log_every == 0 || step + 1 == ocfg.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      t_log = std::chrono::steady_clock::now();
      run.log_metrics({{"step", step + 1},
                       {"loss", win_loss / double(win_n)},
                       {"lr", st.lr},
                       {"grad_norm", win_norm / double(win_n)},
                       {"epoch", double((step + 1) * B) / double(examples.size())},
                       {"tokens_per_s", double(win_tokens) / std::max(secs, 1e-9)}});
      win_loss = win_norm = 0;
      win_n = win_tokens = 0;
    }
  }
  progress.done();
  model.eval();
  run.write_text("samples.txt", greedy_samples(model, tok, data, c.integer("samples"), c.integer("sample_tokens")));
  save_gpt_run(out, model, tok, resolved, {{"step", ocfg.steps}, {"stage", "sft"}});
  return res;
}

}  // namespace nanorlhf::rlhf
