// Pretraining: pack the corpus into one token stream, sample seeded windows of ctx+1 tokens, and
// train the GPT on next-token prediction in the shared training loop.
#include "rlhf/trainers/pretrain.h"

#include <cmath>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "nn/generation.h"
#include "nn/losses.h"
#include "rlhf/batching.h"
#include "rlhf/checkpoints.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/data.h"
#include "rlhf/random.h"
#include "rlhf/run_dir.h"
#include "rlhf/train_options.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

const OptionTable<PretrainConfig> &pretrain_options() {
  using O = PretrainConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t = training_options<O>();
    t.add("data", &O::data, "pretraining corpus: JSONL of {\"text\": ...}")
        .add("out", &O::out, "run directory")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("resume", &O::resume, kResumeHelp)
        .add("tokenizer", &O::tokenizer, "tokenizer.json to use, or a folder holding one (or GPT-2's vocab.json + merges.txt); empty = train one on the corpus")
        .add("vocab_size", &O::vocab_size, "vocabulary of the tokenizer trained when none is given", Range::at_least(257))
        .add("eval_fraction", &O::eval_fraction, "share of documents held out for the eval loss", Range::between(0, 0.5))
        .add("eval_every", [](O &o) -> auto & { return o.loop.eval_every; },
             "steps between held-out evaluations; 0 = at the end only", Range::at_least(0))
        .add("eval_batches", &O::eval_batches, "batches of the held-out evaluation", Range::at_least(1))
        .add("sample_every", &O::sample_every, "steps between sample dumps to samples.txt; 0 = at the end only",
             Range::at_least(0))
        .add("samples", &O::samples, "samples generated from <|bos|> per dump", Range::at_least(0))
        .add("sample_tokens", &O::sample_tokens, "tokens per sample", Range::at_least(1))
        .add("model.vocab", [](O &o) -> auto & { return o.model.vocab; }, "vocabulary size; 0 = the tokenizer's",
          Range::at_least(0))
        .add("model.ctx", [](O &o) -> auto & { return o.model.ctx; }, "context length (tokens)", Range::at_least(2))
        .add("model.d_model", [](O &o) -> auto & { return o.model.d_model; }, "embedding width", Range::at_least(1))
        .add("model.n_layer", [](O &o) -> auto & { return o.model.n_layer; }, "transformer blocks", Range::at_least(1))
        .add("model.n_head", [](O &o) -> auto & { return o.model.n_head; }, "attention heads (must divide d_model)",
             Range::at_least(1))
        .add("model.dropout", [](O &o) -> auto & { return o.model.dropout; }, "dropout probability",
             Range::between(0, 0.99))
        .add("model.tie_weights", [](O &o) -> auto & { return o.model.tie_weights; },
             "LM head shares the token embedding");
    return t;
  }();
  return t;
}

nn::GPTConfig gpt_config_from(nn::GPTConfig m, int64_t tokenizer_vocab) {
  if (m.vocab == 0) m.vocab = tokenizer_vocab;
  NR_CHECK(m.vocab >= tokenizer_vocab,
           "model.vocab = {} is smaller than the tokenizer's vocabulary ({} tokens); use 0 to take the tokenizer's",
           m.vocab, tokenizer_vocab);
  NR_CHECK(m.d_model % m.n_head == 0, "model.d_model = {} must be divisible by model.n_head = {}", m.d_model, m.n_head);
  return nn::GPTConfig::from_json(m.to_json());  // the engine's own checks
}

nn::Tokenizer load_or_train_tokenizer(const std::string &path, int64_t vocab_size, const std::vector<std::string> &texts) {
  if (!path.empty())
    return std::filesystem::is_directory(path) ? nn::Tokenizer::load_folder(path) : nn::Tokenizer::load(path);
  NR_CHECK(!texts.empty(), "cannot train a tokenizer on an empty corpus");
  return nn::Tokenizer::train(texts, int(vocab_size));
}

std::vector<int64_t> pack_documents(const nn::Tokenizer &tok, const std::vector<std::string> &texts) {
  std::vector<int64_t> stream;
  for (const auto &t : texts) {
    std::vector<int64_t> ids = tok.encode(t, /*allow_special=*/true);
    if (ids.empty() || ids[0] != tok.bos_id()) stream.push_back(tok.bos_id());
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  return stream;
}

namespace {

// x = w[0:T], y = w[1:T+1] for B windows of the stream starting at `starts`.
std::pair<Tensor, Tensor> windows(const std::vector<int64_t> &stream, const std::vector<int64_t> &starts, int64_t T,
                                  Device dev) {
  const int64_t B = (int64_t)starts.size();
  std::vector<int64_t> x(size_t(B * T)), y(size_t(B * T));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      x[size_t(b * T + t)] = stream[size_t(starts[b] + t)];
      y[size_t(b * T + t)] = stream[size_t(starts[b] + t + 1)];
    }
  return {from_vector<int64_t>(x, {B, T}).to(dev), from_vector<int64_t>(y, {B, T}).to(dev)};
}

// Mean loss over fixed, evenly spaced windows of the held-out stream (no dropout, no graph).
double eval_loss(nn::GPT &model, const std::vector<int64_t> &stream, int64_t T, int64_t B, int64_t batches, Device dev) {
  const int64_t n_start = (int64_t)stream.size() - T;  // valid starts: [0, n_start)
  if (n_start <= 0) return std::numeric_limits<double>::quiet_NaN();
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  double total = 0;
  const int64_t count = B * batches;
  for (int64_t i = 0; i < batches; ++i) {
    std::vector<int64_t> starts((size_t)B);
    for (int64_t b = 0; b < B; ++b) starts[size_t(b)] = (i * B + b) * n_start / count;
    auto [x, y] = windows(stream, starts, T, dev);
    total += nn::lm_loss(model, x, y).item();
  }
  model.train(was_training);
  return total / double(batches);
}

std::string sample_text(nn::GPT &model, const nn::Tokenizer &tok, int64_t n, int64_t tokens, uint64_t seed,
                        int64_t step) {
  if (n <= 0) return "";
  nn::GenerationConfig g;
  g.max_new_tokens = std::min<int64_t>(tokens, model.config.ctx - 1);
  g.seed = seed;
  std::vector<std::vector<int64_t>> prompts(size_t(n), std::vector<int64_t>{tok.bos_id()});
  nn::GenerationOutput out = nn::generate(model, prompts, g, tok.eos_id(), tok.pad_id());
  std::string s = fmt::format("# step {}\n", step);
  const auto ids = out.response_ids.to_vector<int64_t>();
  const auto mask = out.response_mask.to_vector<float>();
  const int64_t N = out.response_ids.size(1);
  for (int64_t b = 0; b < n; ++b) {
    std::vector<int64_t> row{tok.bos_id()};
    for (int64_t t = 0; t < N && mask[size_t(b * N + t)] > 0; ++t) row.push_back(ids[size_t(b * N + t)]);
    s += fmt::format("[{}] {}\n", b + 1, tok.decode(row));
  }
  return s + "\n";
}

}  // namespace

PretrainResult run_pretrain(const PretrainConfig &cfg, bool quiet) {
  const Device dev = Device::parse(cfg.device);
  {  // sizes first: before minutes of reading and tokenizer training
    const nn::GPTConfig g = gpt_config_from(cfg.model, cfg.model.vocab > 0 ? cfg.model.vocab : cfg.vocab_size);
    check_accumulation("pretrain", cfg.batch_size, cfg.loop.gradient_accumulation_steps, "windows (batch_size)");
    const int64_t micro = cfg.batch_size / cfg.loop.gradient_accumulation_steps;
    nn::check_fits_in_memory(nn::training_step_bytes(g, micro, g.ctx),
                             fmt::format("pretrain: a micro-batch of {} windows (batch_size {} / gradient_accumulation_steps "
                                         "{}) x model.ctx {} tokens on model.d_model {}, model.n_layer {}",
                                         micro, cfg.batch_size, cfg.loop.gradient_accumulation_steps, g.ctx,
                                         g.d_model, g.n_layer));
  }
  std::vector<TextExample> docs = read_text_jsonl(cfg.data);
  NR_CHECK(!docs.empty(), "{}: the corpus holds no documents", cfg.data);
  std::vector<std::string> texts;
  texts.reserve(docs.size());
  for (auto &d : docs) texts.push_back(std::move(d.text));

  // Held-out documents: the last eval_fraction of the file (the world writes them in random order).
  const size_t n_eval = size_t(double(texts.size()) * cfg.eval_fraction);
  std::vector<std::string> eval_texts(texts.end() - (ptrdiff_t)n_eval, texts.end());
  texts.resize(texts.size() - n_eval);

  if (!quiet && cfg.tokenizer.empty())
    std::fprintf(stderr, "training a tokenizer of %lld tokens on %zu documents...\n", (long long)cfg.vocab_size,
                 texts.size());
  nn::Tokenizer tok = load_or_train_tokenizer(cfg.tokenizer, cfg.vocab_size, texts);
  const std::vector<int64_t> stream = pack_documents(tok, texts);
  const std::vector<int64_t> eval_stream = pack_documents(tok, eval_texts);

  nn::GPTConfig gcfg = gpt_config_from(cfg.model, tok.vocab_size());
  const int64_t T = gcfg.ctx, B = cfg.batch_size, steps = cfg.loop.steps;
  NR_CHECK((int64_t)stream.size() > T + 1, "{}: the corpus has {} tokens, fewer than one window of ctx + 1 = {}",
           cfg.data, stream.size(), T + 1);

  json resolved = pretrain_options().resolved(cfg);
  resolved["model"] = gcfg.to_json();
  RunDir run(cfg.out, cfg.overwrite, cfg.resume);
  run.write_config(resolved);

  manual_seed(cfg.seed);
  nn::GPT model(gcfg);
  model.to(dev);
  model.train();
  optim::Optimization opt(model, cfg.optim, steps);
  std::mt19937_64 rng(host_rng_seed(cfg.seed, 1));  // batches: independent of the Philox stream

  PretrainResult res;
  res.run_dir = cfg.out;
  res.tokens = (int64_t)stream.size();
  std::string samples;
  auto dump_samples = [&](int64_t step) {
    samples += sample_text(model, tok, cfg.samples, cfg.sample_tokens, cfg.seed, step);
    run.write_text("samples.txt", samples);
  };
  auto evaluate = [&](int64_t step) {
    const double el = eval_loss(model, eval_stream, T, B, cfg.eval_batches, dev);
    if (std::isfinite(el)) {
      run.log_metrics({{"step", step}, {"eval/loss", el}});
      res.eval_loss = el;
    }
  };

  TrainState state;
  state.add("model", model).add("optimizer", opt).add("batches", rng);
  state.add("losses", res.losses).add("eval_loss", res.eval_loss).add("samples", samples);
  TrainingLoop loop{.task = "pretrain", .options = cfg.loop, .shown = {"loss", "lr"}, .last_value = {"lr", "tokens"},
                    .quiet = quiet, .state = &state};
  run_training_loop(loop, run, [&](int64_t step) {
    // 1. B random windows of ctx + 1 tokens; 2. next-token loss, micro-batch by micro-batch (every
    //    window has T targets, so each weighs its share of the windows); 3. one optimizer step.
    std::vector<size_t> starts((size_t)B);
    for (auto &s : starts) s = (size_t)rand_below(rng, stream.size() - size_t(T));
    AccumulatedMetrics acc;
    for (const std::vector<size_t> &part : micro_batches(starts, cfg.loop.gradient_accumulation_steps)) {
      auto [x, y] = windows(stream, std::vector<int64_t>(part.begin(), part.end()), T, dev);
      const double w = share((double)part.size(), (double)B);
      Tensor loss = nn::lm_loss(model, x, y);
      (loss * w).backward();
      acc.add("loss", loss.item(), w);
    }
    const double l = acc.result().at("loss");
    optim::Optimization::Stats st = opt.step(step);
    res.losses.push_back(l);
    if (cfg.sample_every > 0 && (step + 1) % cfg.sample_every == 0 && step + 1 < steps) dump_samples(step + 1);
    return StepOutput{{{"loss", l}, {"lr", st.lr}, {"grad_norm", st.grad_norm}, {"tokens", double((step + 1) * B * T)}},
                      B * T};
  }, evaluate);
  evaluate(steps);
  dump_samples(steps);
  save_run(run.root(), model, tok, resolved, {{"step", steps}, {"stage", "pretrain"}});
  run.commit();
  return res;
}

}  // namespace nanorlhf::rlhf
