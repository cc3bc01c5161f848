// Pretraining: pack the corpus into one token stream, sample seeded windows of ctx+1 tokens, and
// train the GPT on next-token prediction with AdamW, the lr schedule and gradient clipping.
#include "rlhf/trainers/pretrain.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "nn/checkpoint.h"
#include "nn/generation.h"
#include "rlhf/data.h"
#include "rlhf/run_dir.h"
#include "rlhf/world.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- config keys ----------------------------------------------------------------------------

std::vector<ConfigKey> model_config_keys() {
  return {
      {"model.vocab", 0, "vocabulary size; 0 = the tokenizer's", 0.0},
      {"model.ctx", 128, "context length (tokens)", 2.0},
      {"model.d_model", 128, "embedding width", 1.0},
      {"model.n_layer", 4, "transformer blocks", 1.0},
      {"model.n_head", 4, "attention heads (must divide d_model)", 1.0},
      {"model.dropout", 0.0, "dropout probability", 0.0, 0.99},
      {"model.tie_weights", false, "LM head shares the token embedding"},
  };
}

std::vector<ConfigKey> train_config_keys() {
  return {
      {"seed", 1, "random seed: model init, batches, dropout, samples", 0.0},
      {"steps", 1000, "optimizer steps", 1.0},
      {"batch_size", 16, "sequences per step", 1.0},
      {"lr", 1e-3, "peak learning rate", 0.0, std::nullopt, true},
      {"min_lr_ratio", 0.1, "final lr as a fraction of the peak (cosine/linear)", 0.0, 1.0},
      {"warmup", 50, "linear warm-up steps", 0.0},
      {"schedule", "cosine", "lr schedule after warm-up: cosine, linear or constant"},
      {"weight_decay", 0.1, "AdamW decoupled weight decay (matrices only)", 0.0},
      {"beta1", 0.9, "AdamW beta1", 0.0, 1.0},
      {"beta2", 0.95, "AdamW beta2", 0.0, 1.0},
      {"grad_clip", 1.0, "max global gradient norm; 0 = off", 0.0},
      {"log_every", 10, "steps between metrics.jsonl records", 1.0},
      {"device", "cpu", "cpu, cuda or cuda:N"},
  };
}

void set_default(std::vector<ConfigKey> &schema, const std::string &key, json value) {
  for (auto &k : schema)
    if (k.name == key) {
      k.default_value = std::move(value);
      return;
    }
  throw std::invalid_argument("set_default: no config key '" + key + "' in the schema");
}

nn::GPTConfig gpt_config_from(const json &model_section, int64_t tokenizer_vocab) {
  json m = model_section;
  const int64_t vocab = m.value("vocab", int64_t{0});
  if (vocab == 0) m["vocab"] = tokenizer_vocab;
  NR_CHECK(m["vocab"].get<int64_t>() >= tokenizer_vocab,
           "model.vocab = {} is smaller than the tokenizer's vocabulary ({} tokens); use 0 to take the tokenizer's",
           m["vocab"].get<int64_t>(), tokenizer_vocab);
  nn::GPTConfig g = nn::GPTConfig::from_json(m);
  NR_CHECK(g.d_model % g.n_head == 0, "model.d_model = {} must be divisible by model.n_head = {}", g.d_model, g.n_head);
  return g;
}

OptimConfig OptimConfig::from(const Config &c) {
  OptimConfig o;
  o.lr = c.num("lr");
  o.min_lr_ratio = c.num("min_lr_ratio");
  o.weight_decay = c.num("weight_decay");
  o.beta1 = c.num("beta1");
  o.beta2 = c.num("beta2");
  o.grad_clip = c.num("grad_clip");
  o.warmup = c.integer("warmup");
  o.steps = c.integer("steps");
  o.schedule = c.str("schedule");
  optim::lr_schedule(o.schedule, 0, o.steps, o.warmup, o.lr, o.min_lr_ratio);  // rejects an unknown schedule now
  NR_CHECK(o.beta1 < 1 && o.beta2 < 1, "beta1 and beta2 must be < 1, got {} and {}", o.beta1, o.beta2);
  return o;
}

// ---- the optimization step ------------------------------------------------------------------

Optimization::Optimization(const nn::Module &model, const OptimConfig &cfg) : cfg_(cfg) {
  std::vector<Tensor> decay, no_decay;
  for (auto &[name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
    params_.push_back(p);
  }
  optim::AdamWOptions o{.lr = cfg.lr, .beta1 = cfg.beta1, .beta2 = cfg.beta2, .eps = 1e-8, .weight_decay = cfg.weight_decay};
  decay_ = std::make_unique<optim::AdamW>(decay, o);
  o.weight_decay = 0;
  no_decay_ = std::make_unique<optim::AdamW>(no_decay, o);
}

void Optimization::zero_grad() {
  decay_->zero_grad();
  no_decay_->zero_grad();
}

Optimization::Stats Optimization::step(int64_t step) {
  Stats s;
  s.lr = optim::lr_schedule(cfg_.schedule, step, cfg_.steps, cfg_.warmup, cfg_.lr, cfg_.min_lr_ratio);
  s.grad_norm = optim::clip_grad_norm_(params_, cfg_.grad_clip);
  NR_CHECK(std::isfinite(s.grad_norm),
           "step {}: the gradient norm is {} (training diverged); try a smaller lr or grad_clip", step + 1, s.grad_norm);
  decay_->set_lr(s.lr);
  no_decay_->set_lr(s.lr);
  decay_->step();
  no_decay_->step();
  zero_grad();
  return s;
}

// ---- tokenizer and corpus -------------------------------------------------------------------

nn::Tokenizer load_or_train_tokenizer(const std::string &path, int64_t vocab_size, const std::vector<std::string> &texts) {
  if (!path.empty()) return nn::Tokenizer::load(path);
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

// ---- run directories ------------------------------------------------------------------------

void save_gpt_run(const std::string &run_dir, const nn::GPT &model, const nn::Tokenizer &tok, json config,
                  const json &metadata) {
  config["model"] = model.config.to_json();  // the actual vocab, not "0 = the tokenizer's"
  nn::save_checkpoint(run_dir, model, config, metadata);
  tok.save((fs::path(run_dir) / "tokenizer.json").string());
}

LoadedModel load_gpt_run(const std::string &run_dir, Device device) {
  NR_CHECK(fs::is_directory(run_dir), "checkpoint '{}' is not a folder (expected a run directory holding config.json, "
           "tokenizer.json and model.safetensors)", run_dir);
  LoadedModel out;
  out.config = nn::load_checkpoint_config(run_dir);
  NR_CHECK(out.config.is_object() && out.config.contains("model"), "{}/config.json has no \"model\" section", run_dir);
  nn::GPTConfig g;
  try {
    g = nn::GPTConfig::from_json(out.config["model"]);
  } catch (const std::exception &e) {
    throw Error(fmt::format("{}/config.json: {}", run_dir, e.what()));
  }
  out.tokenizer = nn::Tokenizer::load((fs::path(run_dir) / "tokenizer.json").string());
  NR_CHECK(out.tokenizer.vocab_size() <= g.vocab, "{}: the tokenizer has {} tokens but the model only {}", run_dir,
           out.tokenizer.vocab_size(), g.vocab);
  out.model = std::make_shared<nn::GPT>(g);
  nn::load_checkpoint(run_dir, *out.model);
  out.model->to(device);
  return out;
}

// ---- pretraining ------------------------------------------------------------------------------

std::vector<ConfigKey> pretrain_schema() {
  std::vector<ConfigKey> s = {
      {"data", "data/pretrain.jsonl", "pretraining corpus: JSONL of {\"text\": ...}"},
      {"out", "runs/pretrain", "run directory"},
      {"tokenizer", "", "tokenizer.json to use; empty = train one on the corpus"},
      {"vocab_size", 512, "vocabulary of the tokenizer trained when none is given", 257.0},
      {"eval_fraction", 0.05, "share of documents held out for the eval loss", 0.0, 0.5},
      {"eval_every", 0, "steps between held-out evaluations; 0 = at the end only", 0.0},
      {"eval_batches", 8, "batches of the held-out evaluation", 1.0},
      {"sample_every", 0, "steps between sample dumps to samples.txt; 0 = at the end only", 0.0},
      {"samples", 4, "samples generated from <|bos|> per dump", 0.0},
      {"sample_tokens", 64, "tokens per sample", 1.0},
  };
  for (auto &k : train_config_keys()) s.push_back(k);
  for (auto &k : model_config_keys()) s.push_back(k);
  return s;
}

PretrainConfig PretrainConfig::from(const Config &c) {
  PretrainConfig p;
  p.data = c.str("data");
  p.out = c.str("out");
  p.tokenizer = c.str("tokenizer");
  p.vocab_size = c.integer("vocab_size");
  p.seed = uint64_t(c.integer("seed"));
  p.batch_size = c.integer("batch_size");
  p.log_every = c.integer("log_every");
  p.eval_every = c.integer("eval_every");
  p.eval_batches = c.integer("eval_batches");
  p.sample_every = c.integer("sample_every");
  p.samples = c.integer("samples");
  p.sample_tokens = c.integer("sample_tokens");
  p.eval_fraction = c.num("eval_fraction");
  p.device = c.str("device");
  Device::parse(p.device);  // a bad device fails before any work
  p.optim = OptimConfig::from(c);
  p.resolved = c.resolved();
  p.model = p.resolved.at("model");
  return p;
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

// Next-token cross-entropy of a causal LM on full windows: every position has a target.
// \mathcal{L} = -\frac{1}{BT} \sum_{b,t} \log p_\theta(x_{b,t+1} \mid x_{b,\le t})
Tensor lm_loss(const nn::GPT &model, const Tensor &x, const Tensor &y) {
  Tensor logits = model.forward(x);
  const int64_t V = logits.size(2);
  return cross_entropy(logits.reshape({-1, V}), y.reshape({-1}));
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
    total += lm_loss(model, x, y).item();
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

PretrainResult pretrain(const PretrainConfig &cfg, bool quiet) {
  const Device dev = Device::parse(cfg.device);
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
  const int64_t T = gcfg.ctx, B = cfg.batch_size;
  NR_CHECK((int64_t)stream.size() > T + 1, "{}: the corpus has {} tokens, fewer than one window of ctx + 1 = {}",
           cfg.data, stream.size(), T + 1);

  json resolved = cfg.resolved;
  resolved["model"] = gcfg.to_json();
  RunDir run(cfg.out);
  run.write_config(resolved);

  manual_seed(cfg.seed);
  nn::GPT model(gcfg);
  model.to(dev);
  model.train();
  Optimization opt(model, cfg.optim);
  std::mt19937_64 rng(cfg.seed * 0x9E3779B97F4A7C15ull + 1);  // batches: independent of the Philox stream

  PretrainResult res;
  res.run_dir = cfg.out;
  res.tokens = (int64_t)stream.size();
  std::string samples;
  auto dump_samples = [&](int64_t step) {
    samples += sample_text(model, tok, cfg.samples, cfg.sample_tokens, cfg.seed, step);
    run.write_text("samples.txt", samples);
  };

  const int64_t steps = cfg.optim.steps;
  Progress progress("pretrain", steps, quiet ? nullptr : stderr);
  double window_loss = 0, window_norm = 0;
  int64_t window_n = 0;
  auto t_log = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int64_t> starts((size_t)B);
    for (auto &s : starts) s = (int64_t)rand_below(rng, stream.size() - size_t(T));
    auto [x, y] = windows(stream, starts, T, dev);
    Tensor loss = lm_loss(model, x, y);
    loss.backward();
    const double l = loss.item();
    NR_CHECK(std::isfinite(l), "step {}: the loss is {} (training diverged); try a smaller lr", step + 1, l);
    Optimization::Stats st = opt.step(step);
    res.losses.push_back(l);
    window_loss += l;
    window_norm += st.grad_norm;
    ++window_n;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double tps = double(B * T) / std::max(dt, 1e-9);
    progress.update(step + 1, {{"loss", l}, {"lr", st.lr}}, tps);

    const bool last = step + 1 == steps;
    if ((step + 1) % cfg.log_every == 0 || last) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_log).count();
      t_log = std::chrono::steady_clock::now();
      run.log_metrics({{"step", step + 1},
                       {"loss", window_loss / double(window_n)},
                       {"lr", st.lr},
                       {"grad_norm", window_norm / double(window_n)},
                       {"tokens_per_s", double(window_n * B * T) / std::max(secs, 1e-9)},
                       {"tokens", (step + 1) * B * T}});
      window_loss = window_norm = 0;
      window_n = 0;
    }
    if ((cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0) || last) {
      const double el = eval_loss(model, eval_stream, T, B, cfg.eval_batches, dev);
      if (std::isfinite(el)) {
        run.log_metrics({{"step", step + 1}, {"eval/loss", el}});
        res.eval_loss = el;
      }
    }
    if ((cfg.sample_every > 0 && (step + 1) % cfg.sample_every == 0) || last) dump_samples(step + 1);
  }
  progress.done();
  save_gpt_run(cfg.out, model, tok, resolved, {{"step", steps}, {"stage", "pretrain"}});
  return res;
}

}  // namespace nanorlhf::rlhf
