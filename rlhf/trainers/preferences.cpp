// Preference data: K samples per prompt from the SFT policy at temperature ~1 (optionally mix_k of them
// from a second policy), every pair of distinct responses labelled by one noisy oracle annotator, split by
// prompt into train and held-out files.
#include "rlhf/trainers/preferences.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>

#include "rlhf/batching.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"
#include "rlhf/oracle.h"
#include "rlhf/run_dir.h"
#include "rlhf/evaluation.h"
#include "rlhf/random.h"

namespace nanorlhf::rlhf {

using nlohmann::json;

void PreferencesConfig::validate() const {
  NR_CHECK(mix_k < k, "preferences: mix_k ({}) must be less than k ({})", mix_k, k);
  NR_CHECK((mix_k > 0) == !mix_policy.empty(), "preferences: mix_policy and mix_k > 0 go together (got '{}', {})",
           mix_policy, mix_k);
}

const OptionTable<PreferencesConfig> &preferences_options() {
  using O = PreferencesConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("policy", &O::policy, "run directory of the policy that writes the responses (the SFT model)")
        .add("prompts", &O::prompts, "prompts: JSONL of {\"prompt\": ...}")
        .add("world", &O::world, "world folder (world.json) of the oracle that labels the pairs")
        .add("out", &O::out, "folder for train.jsonl, heldout.jsonl, config.json, metrics.jsonl")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("k", &O::k, "responses sampled per prompt", Range::at_least(2))
        .add("mix_policy", &O::mix_policy, "run directory of a second policy that writes mix_k of the K responses; empty = none")
        .add("mix_k", &O::mix_k, "responses per prompt from mix_policy (the other K - mix_k from policy)", Range::at_least(0))
        .add("pairs_per_prompt", &O::pairs_per_prompt, "pairs kept per prompt, drawn from the K(K-1)/2; 0 = all",
             Range::at_least(0))
        .add("heldout_fraction", &O::heldout_fraction, "share of prompts whose pairs go to heldout.jsonl",
             Range::between(0, 0.9))
        .add("max_prompts", &O::max_prompts, "use the first N prompts; 0 = all", Range::at_least(0))
        .add("max_new_tokens", &O::max_new_tokens, "max response tokens (a response cut there is unfinished)",
             Range::at_least(1))
        .add("temperature", &O::temperature, "sampling temperature", Range::above(0))
        .add("label_temperature", &O::label_temperature,
             "Bradley-Terry temperature of the oracle annotator (noise of the labels)", Range::above(0))
        .add("seed", &O::seed, "seed of the samples, the split and the labels", Range::at_least(0))
        .add("batch", &O::batch, "responses per generate call", Range::at_least(1))
        .add("device", &O::device, "cpu, cuda or cuda:N");
    return t;
  }();
  return t;
}

PreferencesResult run_preferences(const PreferencesConfig &cfg, bool quiet) {
  preferences_options().check(cfg, "preferences");
  const Device dev = Device::parse(cfg.device);
  const int64_t K = cfg.k, per_prompt = cfg.pairs_per_prompt;
  const uint64_t seed = cfg.seed;
  const double label_t = cfg.label_temperature;
  LoadedModel policy = load_run<nn::GPT>(cfg.policy, dev);
  Oracle oracle = Oracle::from_world_dir(cfg.world);
  std::vector<std::string> prompts;
  for (auto &p : read_prompts_jsonl(cfg.prompts)) prompts.push_back(std::move(p.prompt));
  NR_CHECK(!prompts.empty(), "{}: no prompts", cfg.prompts);
  if (cfg.max_prompts > 0 && (size_t)cfg.max_prompts < prompts.size()) prompts.resize((size_t)cfg.max_prompts);

  // Responses p*K .. p*K+K-1 answer prompt p: the first K - mix_k from the policy, the rest from
  // mix_policy (Llama 2 sec. 3.2.1 samples each pair from two model variants, for diversity).
  const int64_t K_mix = cfg.mix_k;
  auto sample = [&](const LoadedModel &m, int64_t per_prompt, uint64_t sample_seed) {
    // Copies of each prompt side by side: one generate call samples them independently.
    std::vector<std::string> expanded;
    for (const auto &p : prompts)
      for (int64_t j = 0; j < per_prompt; ++j) expanded.push_back(p);
    nn::GenerationConfig g{.max_new_tokens = cfg.max_new_tokens, .temperature = cfg.temperature, .seed = sample_seed};
    return sample_in_chunks(*m.model, m.tokenizer, expanded, g, cfg.batch);
  };
  std::optional<LoadedModel> mix;  // loaded and checked before any sampling, so a bad one fails fast
  if (K_mix > 0) {
    mix = load_run<nn::GPT>(cfg.mix_policy, dev);
    NR_CHECK(mix->tokenizer == policy.tokenizer, "preferences: mix_policy '{}' and policy '{}' use "
             "different tokenizers", cfg.mix_policy, cfg.policy);
  }
  const auto t0 = std::chrono::steady_clock::now();
  if (!quiet) std::fprintf(stderr, "preferences: sampling %zu responses (%zu prompts x %lld)...\n", prompts.size() * K,
                           prompts.size(), (long long)K);
  SampledResponses s = sample(policy, K - K_mix, seed);
  if (mix) {
    SampledResponses m = sample(*mix, K_mix, seed + 1);
    SampledResponses all;
    for (size_t p = 0; p < prompts.size(); ++p)
      for (int64_t j = 0; j < K; ++j) {
        const bool own = j < K - K_mix;
        const SampledResponses &src = own ? s : m;
        const size_t i = own ? p * size_t(K - K_mix) + size_t(j) : p * size_t(K_mix) + size_t(j - (K - K_mix));
        all.prompts.push_back(src.prompts[i]);
        all.responses.push_back(src.responses[i]);
        all.finished.push_back(src.finished[i]);
        all.round_trips.push_back(src.round_trips[i]);
        all.lengths.push_back(src.lengths[i]);
      }
    s = std::move(all);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Held-out prompts: a seeded share, so the reward model is evaluated on prompts it never saw.
  std::vector<bool> heldout(prompts.size(), false);
  const size_t n_held = size_t(double(prompts.size()) * cfg.heldout_fraction + 0.5);
  std::vector<size_t> order = shuffled_indices(prompts.size(), seed);
  for (size_t i = 0; i < n_held; ++i) heldout[order[i]] = true;

  std::mt19937_64 rng(host_rng_seed(seed, 7));  // the annotator's coin flips
  PreferencesResult res;
  std::vector<json> train, held;
  double score_sum = 0;
  int64_t agree = 0, decided = 0, finished = 0, not_round_trip = 0;
  std::vector<double> scores(s.responses.size());
  for (size_t i = 0; i < s.responses.size(); ++i) {
    scores[i] = oracle.score(s.prompts[i], s.responses[i], s.finished[i]).total;
    score_sum += scores[i];
    finished += s.finished[i];
    not_round_trip += !s.round_trips[i];
  }
  for (size_t p = 0; p < prompts.size(); ++p) {
    std::vector<std::pair<size_t, size_t>> pairs;
    for (int64_t a = 0; a < K; ++a)
      for (int64_t b = a + 1; b < K; ++b) pairs.emplace_back(p * K + a, p * K + b);
    if (per_prompt > 0 && (size_t)per_prompt < pairs.size()) {
      rand_shuffle(rng, pairs);
      pairs.resize((size_t)per_prompt);
    }
    for (auto [a, b] : pairs) {
      if (s.responses[a] == s.responses[b]) {
        ++res.identical_skipped;
        continue;
      }
      // An empty response (EOS first, or only special tokens) is not a TRL preference record: the
      // readers reject "" (rlhf/data.h), so such a pair would make the whole file unreadable.
      if (s.responses[a].empty() || s.responses[b].empty()) continue;
      // The reward model and DPO re-encode the text: a pair is kept only if that gives the sampled
      // tokens (a cut UTF-8 character, read back as U+FFFD, can even outgrow the context).
      if (!s.round_trips[a] || !s.round_trips[b]) {
        ++res.dropped_not_round_trip;
        continue;
      }
      const int label = oracle.label_pair(prompts[p], s.responses[a], s.finished[a], s.responses[b], s.finished[b],
                                          label_t, rng);
      const size_t w = label == 0 ? a : b, l = label == 0 ? b : a;
      if (scores[a] != scores[b]) {
        ++decided;
        agree += scores[w] > scores[l];
      }
      json rec = {{"prompt", prompts[p]},
                  {"chosen", s.responses[w]},
                  {"rejected", s.responses[l]},
                  {"chosen_finished", bool(s.finished[w])},
                  {"rejected_finished", bool(s.finished[l])}};
      (heldout[p] ? held : train).push_back(std::move(rec));
    }
  }
  NR_CHECK(!train.empty(), "preferences: no training pair is left ({} identical, {} dropped_not_round_trip); raise k or "
           "temperature", res.identical_skipped, res.dropped_not_round_trip);

  RunDir run(cfg.out, cfg.overwrite);
  run.write_config(preferences_options().resolved(cfg));
  write_jsonl(run.path("train.jsonl"), train);
  write_jsonl(run.path("heldout.jsonl"), held);
  res.train_path = (std::filesystem::path(cfg.out) / "train.jsonl").string();
  res.heldout_path = (std::filesystem::path(cfg.out) / "heldout.jsonl").string();
  res.train_pairs = (int64_t)train.size();
  res.heldout_pairs = (int64_t)held.size();
  res.label_agreement = decided ? double(agree) / double(decided) : 0.0;
  res.mean_oracle_score = score_sum / double(s.responses.size());
  run.log_metrics({{"step", 0},
                   {"pairs/train", res.train_pairs},
                   {"pairs/heldout", res.heldout_pairs},
                   {"pairs/identical_skipped", res.identical_skipped},
                   {"pairs/dropped_not_round_trip", res.dropped_not_round_trip},
                   {"labels/agreement_with_oracle", res.label_agreement},
                   {"samples/oracle_score", res.mean_oracle_score},
                   {"samples/finished", double(finished) / double(s.responses.size())},
                   {"samples/not_round_trip", not_round_trip},
                   {"samples/seconds", secs}});
  run.commit();
  if (!quiet)
    std::fprintf(stderr,
                 "preferences: %lld train + %lld held-out pairs (%lld identical skipped, %lld dropped_not_round_trip: "
                 "%lld of %zu responses do not re-encode to their sampled tokens) in %.1fs; labels agree with the "
                 "noiseless oracle on %.1f%% of decided pairs; mean oracle score %.2f\n",
                 (long long)res.train_pairs, (long long)res.heldout_pairs, (long long)res.identical_skipped,
                 (long long)res.dropped_not_round_trip, (long long)not_round_trip, s.responses.size(), secs,
                 100 * res.label_agreement, res.mean_oracle_score);
  return res;
}

}  // namespace nanorlhf::rlhf
