// The over-optimisation study, top to bottom in run_overoptimization: the prefix (world, SFT,
// preference pairs), one reward model per pair count, best-of-n on held-out prompts, an RL run per
// reward model with no KL penalty, then the fits of rlhf/overoptimization_fit.h and the report.
#include "rlhf/trainers/overoptimization.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"
#include "rlhf/objectives.h"
#include "rlhf/overoptimization_fit.h"
#include "rlhf/report.h"
#include "rlhf/rollout.h"
#include "rlhf/stages.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<int64_t> OveroptimizationConfig::pair_counts() const {
  std::vector<int64_t> out;
  for (size_t p = 0; p <= rm_pairs.size();) {
    const size_t q = std::min(rm_pairs.find(',', p), rm_pairs.size());
    const std::string s = rm_pairs.substr(p, q - p);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    NR_CHECK(used == s.size() && !s.empty() && v > 0,
             "overoptimization: rm_pairs must be a comma list of positive pair counts (e.g. 250,1000,4000), got '{}'",
             rm_pairs);
    out.push_back(v);
    p = q + 1;
  }
  return out;
}

void OveroptimizationConfig::validate() const {
  pair_counts();
  NR_CHECK((bon_max_n & (bon_max_n - 1)) == 0,
           "overoptimization: bon_max_n must be a power of two (n = 1, 2, 4, ..., bon_max_n), got {}", bon_max_n);
}

const OptionTable<OveroptimizationConfig> &overoptimization_options() {
  using O = OveroptimizationConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("out", &O::out, "folder for overoptimization.json, report.html and the runs it trains")
        .add("overwrite", &O::overwrite, kOverwriteHelp)
        .add("from", &O::from,
             "pipeline run folder with world/, sft/, preferences/ (e.g. runs/demo); empty = build them in out/prefix")
        .add("rm_pairs", &O::rm_pairs, "training pairs of each reward model: a comma list, nested random draws")
        .add("train_rm", &O::train_rm, "train the reward models; false = reuse out/rm_<pairs> of an earlier run")
        .add("bon_max_n", &O::bon_max_n, "best-of-n for n = 1, 2, 4, ..., bon_max_n (a power of two)",
             Range::at_least(1))
        .add("bon_prompts", &O::bon_prompts, "held-out prompts for best-of-n, each sampled bon_max_n times",
             Range::at_least(1))
        .add("bon_estimator", &O::bon_estimator,
             "unbiased: the expected pick over every n-subset of the samples (Gao et al.); nested: the first n", {},
             {"unbiased", "nested"})
        .add("bon_batch", &O::bon_batch, "responses per generate call", Range::at_least(1))
        .add("seed", &O::seed, "seed of the pair draw and of the best-of-n samples", Range::at_least(0))
        .add("device", &O::device, "cpu, cuda or cuda:N")
        .include(&O::rm, reward_options(), "rm.")
        .include(&O::rl, reinforce_options(), "rl.");
    // Wired by the study: paths of the prefix and of its own runs, and the one device; RL trains on
    // the reward model alone (the proxy under study).
    for (const char *k : {"sft", "data", "eval_data", "world", "out", "overwrite", "device"}) t.remove(std::string("rm.") + k);
    for (const char *k : {"policy", "reward_model", "prompts", "eval_prompts", "world", "out", "overwrite", "device",
                          "reward_funcs", "reward_weights"})
      t.remove(std::string("rl.") + k);
    return t;
  }();
  return t;
}

std::vector<BonRow> best_of_n_curve(const std::vector<double> &proxy, const std::vector<double> &gold,
                                    const std::string &estimator) {
  NR_CHECK(proxy.size() == gold.size() && !proxy.empty(), "best_of_n_curve: {} proxy and {} gold scores",
           proxy.size(), gold.size());
  std::vector<BonRow> rows;
  for (int64_t n = 1; n <= (int64_t)proxy.size(); n *= 2) {
    BonRow r{n, 0, 0};
    if (estimator == "nested") {
      const size_t i = best_of_n(proxy, n);
      r.gold = gold[i], r.proxy = proxy[i];
    } else {
      const std::vector<double> w = bon_pick_weights(proxy, n);
      for (size_t i = 0; i < w.size(); ++i) r.gold += w[i] * gold[i], r.proxy += w[i] * proxy[i];
    }
    rows.push_back(r);
  }
  return rows;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// world/, sft/ and preferences/ of `from`, or of out/prefix built by the pipeline's stages.
std::string prefix_dir(const OveroptimizationConfig &cfg, bool quiet) {
  auto complete = [](const std::string &d) {
    return fs::exists(d + "/world/world.json") && fs::exists(d + "/sft/model.safetensors") &&
           fs::exists(d + "/preferences/train.jsonl");
  };
  if (!cfg.from.empty()) {
    NR_CHECK(complete(cfg.from), "overoptimization: from = '{}' lacks world/world.json, sft/model.safetensors or "
             "preferences/train.jsonl (run `nanorlhf pipeline --stages pretrain,sft,preferences --out {}`)",
             cfg.from, cfg.from);
    return cfg.from;
  }
  const std::string dir = cfg.out + "/prefix";
  if (complete(dir)) return dir;
  const Stage &pipe = find_stage("pipeline");
  Config c(pipe.schema());
  c.merge(json{{"out", dir}, {"stages", "pretrain,sft,preferences"}});
  StageResult r = pipe.run(c, quiet);
  if (!quiet) std::fprintf(stderr, "%s\n", r.message.c_str());
  return dir;
}

// The first `n` of the training pairs in a seeded order: each smaller set is inside the larger.
std::string write_pair_subset(const std::string &train, int64_t n, uint64_t seed, const std::string &path) {
  const auto lines = read_jsonl(train);
  NR_CHECK((size_t)n <= lines.size(), "overoptimization: rm_pairs asks for {} pairs but {} holds {}; lower rm_pairs "
           "or build the prefix with more prompts (pipeline world.n_prompts)", n, train, lines.size());
  const std::vector<size_t> order = shuffled_indices(lines.size(), seed);
  std::vector<json> out;
  for (int64_t i = 0; i < n; ++i) out.push_back(lines[order[(size_t)i]].second);
  write_jsonl(path, out);
  return path;
}

// bon_max_n samples of each held-out prompt from SFT, scored by the oracle and by every reward model.
struct BonSamples {
  std::vector<std::string> prompts;
  std::vector<std::vector<double>> gold;                // [prompt][sample]
  std::vector<std::vector<std::vector<double>>> proxy;  // [rm][prompt][sample]
  std::vector<std::vector<std::string>> responses;      // [prompt][sample], the first few prompts only
};

BonSamples sample_best_of_n(const OveroptimizationConfig &cfg, const std::string &prefix,
                            const std::vector<std::shared_ptr<nn::ScalarModel>> &rms, bool quiet) {
  const Device dev = Device::parse(cfg.device);
  LoadedModel sft = load_run<nn::GPT>(prefix + "/sft", dev);
  sft.model->eval();
  const Oracle oracle = Oracle::from_world_dir(prefix + "/world");
  BonSamples s;
  for (auto &p : read_prompts_jsonl(prefix + "/world/eval_prompts.jsonl")) s.prompts.push_back(std::move(p.prompt));
  if ((int64_t)s.prompts.size() > cfg.bon_prompts) s.prompts.resize((size_t)cfg.bon_prompts);
  int64_t longest = 0;
  for (const auto &p : s.prompts) longest = std::max<int64_t>(longest, (int64_t)sft.tokenizer.encode_prompt(p).size());
  // The RL evaluation's sampling settings: both methods are measured on the same distribution.
  nn::GenerationConfig g{.max_new_tokens = std::min(cfg.rl.run.eval.max_new_tokens, sft.model->config.ctx - longest),
                         .temperature = cfg.rl.run.eval.temperature};
  NR_CHECK(g.max_new_tokens > 0, "overoptimization: the longest held-out prompt ({} tokens) fills the context", longest);
  s.proxy.assign(rms.size(), {});
  NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t chunk = 0;
  for (size_t p = 0; p < s.prompts.size(); ++p) {
    std::vector<double> gold;
    std::vector<std::vector<double>> proxy(rms.size());
    std::vector<std::string> texts;
    for (int64_t i = 0; i < cfg.bon_max_n; i += cfg.bon_batch, ++chunk) {
      g.seed = cfg.seed + chunk;
      Rollout r = sample_responses(*sft.model, sft.tokenizer,
                                   std::vector<std::string>((size_t)std::min(cfg.bon_batch, cfg.bon_max_n - i),
                                                            s.prompts[p]), g);
      for (size_t b = 0; b < r.responses.size(); ++b) {
        gold.push_back(oracle.score(s.prompts[p], r.responses[b], r.gen.finished[b]).total);
        texts.push_back(r.responses[b]);
      }
      for (size_t k = 0; k < rms.size(); ++k) {
        std::vector<double> v = reward_scores(*rms[k], r.gen).to_vector<double>();
        proxy[k].insert(proxy[k].end(), v.begin(), v.end());
      }
    }
    s.gold.push_back(std::move(gold));
    for (size_t k = 0; k < rms.size(); ++k) s.proxy[k].push_back(std::move(proxy[k]));
    if (p < 4) s.responses.push_back(std::move(texts));
  }
  if (!quiet)
    std::fprintf(stderr, "best-of-n: %zu samples scored by the oracle and %zu reward models in %.0f s\n",
                 s.prompts.size() * (size_t)cfg.bon_max_n, rms.size(), seconds_since(t0));
  return s;
}

// Mean over prompts of the best-of-n curve of each prompt.
std::vector<OveroptPoint> bon_points(const BonSamples &s, size_t k, int64_t pairs, const std::string &estimator) {
  std::vector<OveroptPoint> pts;
  for (size_t p = 0; p < s.prompts.size(); ++p) {
    std::vector<BonRow> rows = best_of_n_curve(s.proxy[k][p], s.gold[p], estimator);
    if (pts.empty())
      for (const BonRow &r : rows) {
        const double kl = best_of_n_kl(r.n);  // an upper bound: SFT repeats itself
        pts.push_back({pairs, "bon", r.n, 0, kl, std::sqrt(kl), 0, 0});
      }
    for (size_t i = 0; i < rows.size(); ++i) pts[i].gold += rows[i].gold, pts[i].proxy += rows[i].proxy;
  }
  for (auto &pt : pts) pt.gold /= double(s.prompts.size()), pt.proxy /= double(s.prompts.size());
  return pts;
}

// The RL run's evaluations (metrics.jsonl), with SFT itself as step 0 (the same seeded samples).
std::vector<OveroptPoint> rl_points(const std::string &metrics, int64_t pairs) {
  const std::vector<std::string> keys = {"eval/kl_to_ref", "eval/oracle_reward", "eval/rm_score",
                                         "eval/ref_oracle_reward", "eval/ref_rm_score"};
  std::vector<Curve> c = curves_from_metrics(metrics, keys);
  NR_CHECK(c.size() == keys.size(), "{}: no evaluations with eval/rm_score; rl.eval_every and the world are needed",
           metrics);
  std::vector<OveroptPoint> pts = {{pairs, "rl", 0, 0, 0.0, 0.0, c[3].points[0].second, c[4].points[0].second}};
  for (size_t i = 0; i < c[0].points.size(); ++i) {
    const double kl = c[0].points[i].second;
    pts.push_back({pairs, "rl", 0, (int64_t)c[0].points[i].first, kl, std::sqrt(std::max(0.0, kl)),
                   c[1].points[i].second, c[2].points[i].second});
  }
  return pts;
}

json fit_json(const std::vector<OveroptPoint> &pts, double rm_accuracy) {
  std::vector<double> d, R;
  const OveroptPoint *best = &pts[0];
  for (const auto &p : pts) {
    d.push_back(p.d), R.push_back(p.gold - pts[0].gold);
    if (p.gold > best->gold) best = &p;
  }
  const OveroptFit f = pts[0].method == "bon" ? fit_bon(d, R) : fit_rl(d, R);
  auto finite = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };  // no peak: null
  return {{"rm_pairs", pts[0].rm_pairs}, {"method", pts[0].method}, {"rm_accuracy", rm_accuracy},
          {"alpha", f.alpha}, {"beta", f.beta}, {"peak_d", finite(f.peak_d)},
          {"peak_kl", finite(f.peak_d * f.peak_d)}, {"gold_0", pts[0].gold}, {"gold_max", best->gold},
          {"d_at_gold_max", best->d}, {"gold_last", pts.back().gold}, {"d_last", pts.back().d},
          {"proxy_0", pts[0].proxy}, {"proxy_last", pts.back().proxy}};
}

std::string fits_table(const json &fits) {
  auto cell = [](const json &v, const char *f) {
    return v.is_null() ? std::string("none") : fmt::format(fmt::runtime(f), v.get<double>());
  };
  std::string t = fmt::format("{:>8} {:>6} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8} {:>9} {:>9} {:>7}\n", "rm pairs",
                              "method", "rm acc", "alpha", "beta", "peak d", "peak KL", "gold d=0", "gold max",
                              "gold last", "d last");
  for (const auto &f : fits)
    t += fmt::format("{:>8} {:>6} {:>7.3f} {:>+8.3f} {:>+8.3f} {:>7} {:>7} {:>+8.3f} {:>+9.3f} {:>+9.3f} {:>7.2f}\n",
                     f["rm_pairs"].get<int64_t>(), f["method"].get<std::string>(), f["rm_accuracy"].get<double>(),
                     f["alpha"].get<double>(), f["beta"].get<double>(), cell(f["peak_d"], "{:.2f}"),
                     cell(f["peak_kl"], "{:.2f}"), f["gold_0"].get<double>(), f["gold_max"].get<double>(),
                     f["gold_last"].get<double>(), f["d_last"].get<double>());
  return t;
}

// Gold and proxy minus their d = 0 values, and the fitted gold, against d (sorted by d).
Chart point_chart(std::vector<OveroptPoint> pts, const json &fit, const std::string &title) {
  const double g0 = pts[0].gold, p0 = pts[0].proxy;
  std::stable_sort(pts.begin(), pts.end(), [](const auto &a, const auto &b) { return a.d < b.d; });
  Chart c{title, {{"gold - gold(0)", {}}, {"proxy - proxy(0)", {}}, {"gold fit", {}}}, "d = sqrt(KL to SFT)"};
  const double a = fit["alpha"].get<double>(), b = fit["beta"].get<double>();
  for (const auto &p : pts) {
    c.curves[0].points.emplace_back(p.d, p.gold - g0);
    c.curves[1].points.emplace_back(p.d, p.proxy - p0);
    c.curves[2].points.emplace_back(p.d, p.method == "bon" ? gold_bon(p.d, a, b) : gold_rl(p.d, a, b));
  }
  return c;
}

}  // namespace

OveroptimizationResult run_overoptimization(const OveroptimizationConfig &cfg, bool quiet) {
  overoptimization_options().check(cfg, "overoptimization");
  const auto t_start = std::chrono::steady_clock::now();
  auto log = [&](const std::string &m) {
    if (!quiet) std::fprintf(stderr, "== %s (%.0f s)\n", m.c_str(), seconds_since(t_start));
  };
  NR_CHECK(cfg.overwrite || !fs::exists(cfg.out + "/overoptimization.json"),
           "overoptimization: {} holds a study already (overoptimization.json); give --overwrite to replace it, or "
           "another out", cfg.out);
  fs::create_directories(cfg.out);
  const std::string prefix = prefix_dir(cfg, quiet);
  const std::vector<int64_t> counts = cfg.pair_counts();

  // 1. One reward model per pair count, from the SFT backbone, all with the same settings.
  std::vector<std::shared_ptr<nn::ScalarModel>> rms;
  std::vector<double> rm_accuracy;
  for (int64_t n : counts) {
    RewardConfig rc = cfg.rm;
    rc.sft = prefix + "/sft";
    rc.eval_data = prefix + "/preferences/heldout.jsonl";
    rc.world = prefix + "/world";
    rc.out = fmt::format("{}/rm_{}", cfg.out, n);
    rc.overwrite = cfg.overwrite;
    rc.device = cfg.device;
    if (cfg.train_rm) {
      log(fmt::format("reward model on {} pairs", n));
      rc.data = write_pair_subset(prefix + "/preferences/train.jsonl", n, cfg.seed,
                                  fmt::format("{}/pairs_{}.jsonl", cfg.out, n));
      run_reward_model(rc, quiet);
    }
    // Its agreement with the noiseless oracle on the held-out pairs: the last record of its run.
    std::vector<Curve> acc = curves_from_metrics(rc.out + "/metrics.jsonl", {"rm_accuracy"});
    NR_CHECK(!acc.empty() && fs::exists(rc.out + "/model.safetensors"), "overoptimization: {} holds no trained reward "
             "model with a held-out rm_accuracy; run with train_rm = true", rc.out);
    rm_accuracy.push_back(acc[0].points.back().second);
    rms.push_back(load_run<nn::ScalarModel>(rc.out, Device::parse(cfg.device)).model);
    rms.back()->requires_grad_(false);
  }

  // 2. Best-of-n: one set of bon_max_n samples per prompt, every reward model picks from it.
  log(fmt::format("best-of-n: {} held-out prompts x {} samples", cfg.bon_prompts, cfg.bon_max_n));
  const BonSamples bon = sample_best_of_n(cfg, prefix, rms, quiet);

  OveroptimizationResult res;
  res.fits = json::array();
  std::vector<Chart> charts;
  std::vector<ReportSample> samples;
  for (size_t p = 0; p < bon.responses.size(); ++p) {
    samples.push_back({bon.prompts[p], {{"SFT (a sample)", bon.responses[p][0]}}});
    for (size_t k = 0; k < rms.size(); ++k)
      samples.back().responses.emplace_back(fmt::format("best of {} by RM {}", cfg.bon_max_n, counts[k]),
                                            bon.responses[p][best_of_n(bon.proxy[k][p], cfg.bon_max_n)]);
  }

  // 3. Per reward model: its best-of-n curve, then RL on it with no KL penalty, evaluated along the way.
  for (size_t k = 0; k < rms.size(); ++k) {
    const std::vector<OveroptPoint> bp = bon_points(bon, k, counts[k], cfg.bon_estimator);
    ReinforceConfig rc = cfg.rl;
    rc.run.policy = prefix + "/sft";
    rc.run.reward_model = fmt::format("{}/rm_{}", cfg.out, counts[k]);
    rc.run.prompts = prefix + "/world/prompts.jsonl";
    rc.run.eval_prompts = prefix + "/world/eval_prompts.jsonl";
    rc.run.world = prefix + "/world";
    rc.run.out = fmt::format("{}/rl_{}", cfg.out, counts[k]);
    rc.run.overwrite = cfg.overwrite;
    rc.device = cfg.device;
    log(fmt::format("RL (REINFORCE, beta {}) on RM {}", rc.beta, counts[k]));
    run_reinforce(rc, quiet);
    const std::vector<OveroptPoint> rp = rl_points(rc.run.out + "/metrics.jsonl", counts[k]);
    for (const auto *pts : {&bp, &rp}) {
      res.fits.push_back(fit_json(*pts, rm_accuracy[k]));
      res.points.insert(res.points.end(), pts->begin(), pts->end());
      charts.push_back(point_chart(*pts, res.fits.back(),
                                   fmt::format("RM {} pairs: {}", counts[k], (*pts)[0].method == "bon" ?
                                               fmt::format("best-of-n (n <= {})", cfg.bon_max_n) :
                                               std::string("RL, no KL penalty"))));
    }
  }

  // 4. overoptimization.json, report.html, the table.
  json points = json::array();
  for (const auto &p : res.points)
    points.push_back({{"rm_pairs", p.rm_pairs}, {"method", p.method}, {"n", p.n}, {"step", p.step}, {"kl", p.kl},
                      {"d", p.d}, {"gold", p.gold}, {"proxy", p.proxy}});
  json doc = {{"config", overoptimization_options().resolved(cfg)}, {"prefix", prefix}, {"points", points},
              {"fits", res.fits}, {"seconds", seconds_since(t_start)}};
  nn::write_file_atomic(cfg.out + "/overoptimization.json", doc.dump(2) + "\n");
  write_report_html(cfg.out + "/report.html", res.fits, charts, samples, "nanorlhf reward over-optimisation",
                    {"rm_pairs", "method", "rm_accuracy", "alpha", "beta", "peak_d", "peak_kl", "gold_0", "gold_max",
                     "d_at_gold_max", "gold_last", "d_last", "proxy_0", "proxy_last"});
  res.table = fits_table(res.fits);
  return res;
}

}  // namespace nanorlhf::rlhf
