// Invariance to how a batch is cut (TRL's tests/invariant, in spirit): over 20 float32 steps on a
// micro model, a global batch of 8 as 8 x 1, 1 x 8 and 4 x 2 (rows x gradient_accumulation_steps)
// gives the same loss and grad-norm trajectories for the reward model, SFT, DPO, KTO, PPO and GRPO.
// GRPO's bnpo, which normalises each micro-batch by its own tokens as TRL's does, is the control:
// it must change with the cut, or the test could not tell.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/checkpoints.h"
#include "rlhf/config.h"
#include "rlhf/gradient_accumulation.h"
#include "rlhf/rl_test_util.h"
#include "rlhf/trainers/dpo.h"
#include "rlhf/trainers/grpo.h"
#include "rlhf/trainers/kto.h"
#include "rlhf/trainers/ppo.h"
#include "rlhf/trainers/reward_model.h"
#include "rlhf/trainers/sft.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_rl_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kSteps = 20;
// float32 sums in another order, compounded over 20 Adam steps.
constexpr double kRelTol = 2e-4;

struct Trajectory {
  std::vector<double> loss, grad_norm;
  void add(const Metrics &m) {
    loss.push_back(m.at("loss"));
    grad_norm.push_back(m.at("grad_norm"));
  }
};

double max_rel_diff(const std::vector<double> &a, const std::vector<double> &b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]) / std::max(1e-3, std::fabs(a[i])));
  return d;
}

// The largest relative difference between two trajectories' losses and grad norms.
double max_rel_diff(const Trajectory &a, const Trajectory &b) {
  EXPECT_EQ(a.loss.size(), (size_t)kSteps);
  EXPECT_EQ(b.loss.size(), a.loss.size());
  if (b.loss.size() != a.loss.size()) return INFINITY;
  return std::max(max_rel_diff(a.loss, b.loss), max_rel_diff(a.grad_norm, b.grad_norm));
}

// f(accumulation) for 1 (8 x 1), 8 (1 x 8) and 2 (4 x 2) against the first.
template <class F>
void expect_invariant(F run) {
  const Trajectory whole = run(1);
  for (int64_t a : {8, 2}) {
    const Trajectory cut = run(a);
    const double d = max_rel_diff(whole, cut);
    EXPECT_LT(d, kRelTol) << "gradient_accumulation_steps " << a;
    std::fprintf(stderr, "  8 / %lld x %lld: max relative difference %.2e\n", 8 / (long long)a, (long long)a, d);
  }
}

std::string temp_dir(const std::string &name) {
  fs::path p = fs::temp_directory_path() / ("nanorlhf_test_accum_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// A "pretrained" run directory: a random micro GPT with the byte-level tokenizer.
std::string micro_run(const std::string &dir) {
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2});
  save_run(dir, gpt, tok, json::object());
  return dir;
}

// Eight pairs whose completions differ in length, so a token-weighted mean differs from a mean of
// micro-batch means.
std::vector<json> pair_records() {
  std::vector<json> r;
  const char *answers[] = {"Yes.", "No, not today.", "The zorb is blue.", "1 2 3",
                           "Hello there, Ann!", "ok", "Big fish swim deep.", "Red."};
  for (int i = 0; i < 8; ++i)
    r.push_back({{"prompt", "Question " + std::to_string(i) + "?"},
                 {"chosen", answers[i]},
                 {"rejected", answers[(i + 3) % 8]}});
  return r;
}

// loss and grad_norm of each step, from a run's metrics.jsonl (log_every = 1).
Trajectory read_metrics(const std::string &run) {
  Trajectory t;
  std::ifstream f(run + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    json j = json::parse(line);
    if (j.contains("grad_norm")) t.loss.push_back(j["loss"]), t.grad_norm.push_back(j["grad_norm"]);
  }
  return t;
}

GRPOConfig grpo_config(const std::string &loss_type, int64_t accumulation) {
  GRPOConfig o;
  o.num_generations = 4;
  o.batch_size = 2;  // 8 completions
  o.loss_type = loss_type;
  o.beta = 0.04;
  o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
  o.optim = {.lr = 5e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
  o.loop.steps = kSteps;
  o.loop.gradient_accumulation_steps = accumulation;
  return o;
}

Trajectory run_grpo(const std::string &loss_type, int64_t accumulation) {
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  GRPOTrainer tr(policy, *ref, ascii_share, tok, grpo_config(loss_type, accumulation));
  Trajectory t;
  for (int i = 0; i < kSteps; ++i) t.add(tr.step(prompts(2)));
  return t;
}

}  // namespace

TEST(GradientAccumulation, MicroBatchesCoverTheRowsInOrder) {
  EXPECT_EQ(micro_batches({4, 5, 6, 7, 8}, 2), (std::vector<std::vector<size_t>>{{4, 5, 6}, {7, 8}}));
  EXPECT_EQ(micro_batches({4, 5}, 4), (std::vector<std::vector<size_t>>{{4}, {5}}));  // a short last batch
  EXPECT_EQ(micro_batches({4, 5, 6}, 1), (std::vector<std::vector<size_t>>{{4, 5, 6}}));
  AccumulatedMetrics m;
  m.add("loss", 2.0, 0.25);
  m.add({{"loss", 4.0}}, 0.75);
  EXPECT_DOUBLE_EQ(m.result().at("loss"), 3.5);
  EXPECT_TRUE(nr_test::throws_with([] { check_accumulation("dpo", 6, 4, "pairs"); },
                                   "dpo: a batch of 6 pairs does not divide into gradient_accumulation_steps 4"));
}

TEST(GradientAccumulation, RewardModelIsInvariant) {
  const std::string dir = temp_dir("rm");
  const std::string sft = micro_run(dir + "/sft");
  write_jsonl(dir + "/pairs.jsonl", pair_records());
  expect_invariant([&](int64_t a) {
    Config c(reward_options().schema());
    for (const std::string &kv : {"sft=" + sft, "data=" + dir + "/pairs.jsonl", "out=" + dir + "/rm",
                                  std::string("overwrite=true"), "steps=" + std::to_string(kSteps),
                                  std::string("batch_size=8"), std::string("log_every=1"), std::string("lr=1e-3"),
                                  std::string("eval_data="), std::string("world="),
                                  "gradient_accumulation_steps=" + std::to_string(a)})
      c.set(kv);
    run_reward_model(reward_options().read(c), true);
    return read_metrics(dir + "/rm");
  });
  fs::remove_all(dir);
}

TEST(GradientAccumulation, SftIsInvariantWithTokenNormalisation) {
  const std::string dir = temp_dir("sft");
  const std::string init = micro_run(dir + "/init");
  std::vector<json> demos;
  for (const json &p : pair_records()) demos.push_back({{"prompt", p["prompt"]}, {"completion", p["chosen"]}});
  write_jsonl(dir + "/sft.jsonl", demos);
  expect_invariant([&](int64_t a) {
    Config c(sft_options().schema());
    for (const std::string &kv : {"init=" + init, "data=" + dir + "/sft.jsonl", "out=" + dir + "/sft",
                                  std::string("overwrite=true"), "steps=" + std::to_string(kSteps),
                                  std::string("batch_size=8"), std::string("log_every=1"), std::string("lr=3e-3"),
                                  std::string("samples=0"), "gradient_accumulation_steps=" + std::to_string(a)})
      c.set(kv);
    run_sft(sft_options().read(c), true);
    return read_metrics(dir + "/sft");
  });
  fs::remove_all(dir);
}

TEST(GradientAccumulation, DpoAndRpoAreInvariant) {
  const std::string dir = temp_dir("dpo");
  write_jsonl(dir + "/pairs.jsonl", pair_records());
  for (const std::string loss_type : {"sigmoid", "simpo"}) {
    SCOPED_TRACE(loss_type);
    expect_invariant([&](int64_t a) {
      manual_seed(3);
      nn::Tokenizer tok;
      nn::GPT policy(tiny_config(tok));
      auto ref = frozen_copy(policy);
      DPOConfig o;
      o.batch_size = 8;
      o.loss_type = loss_type;
      o.rpo_alpha = 0.5;
      // SimPO at DPO's lr diverges (grad norm 1 -> 30 in 20 steps), where rounding grows chaotically.
      o.optim = {.lr = loss_type == "simpo" ? 2e-4 : 1e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
      o.loop.steps = kSteps;
      o.loop.gradient_accumulation_steps = a;
      DPOTrainer tr(policy, ref.get(), read_preference_pairs(dir + "/pairs.jsonl", tok, 48), tok.pad_id(), o);
      Trajectory t;
      for (int i = 0; i < kSteps; ++i) t.add(tr.step(index_range(0, 8)));
      return t;
    });
  }
  fs::remove_all(dir);
}

TEST(GradientAccumulation, KtoIsInvariantWithTheBatchReferencePoint) {
  const std::string dir = temp_dir("kto");
  write_jsonl(dir + "/pairs.jsonl", pair_records());
  expect_invariant([&](int64_t a) {
    manual_seed(3);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    KTOConfig o;
    o.batch_size = 8;
    o.optim = {.lr = 2e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
    o.loop.steps = kSteps;
    o.loop.gradient_accumulation_steps = a;
    KTOTrainer tr(policy, *ref, read_kto_examples(dir + "/pairs.jsonl", tok, 48), tok.pad_id(), o);
    std::vector<size_t> half = index_range(0, 8);  // 16 examples: the chosen and rejected of 8 pairs
    Trajectory t;
    for (int i = 0; i < kSteps; ++i) t.add(tr.step(i % 2 ? index_range(8, 16) : half));
    return t;
  });
  fs::remove_all(dir);
}

TEST(GradientAccumulation, PpoIsInvariantWithTokenNormalisation) {
  expect_invariant([&](int64_t a) {
    manual_seed(5);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    nn::ScalarModel value(tiny_config(tok));
    value.init_backbone_from(policy);
    PPOConfig o;
    o.batch_size = 8;
    o.num_mini_batches = 1;
    o.ppo_epochs = 2;
    o.beta = 0.01;
    o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
    o.optim = {.lr = 5e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
    o.loop.steps = kSteps;
    o.loop.gradient_accumulation_steps = a;
    PPOTrainer tr(policy, *ref, value, ascii_share, tok, o);
    Trajectory t;
    for (int i = 0; i < kSteps; ++i) {
      Metrics m = tr.step(prompts(8));
      m["loss"] = m.at("loss/policy_avg") + o.vf_coef * m.at("loss/value_avg");
      t.add(m);
    }
    return t;
  });
}

TEST(GradientAccumulation, GrpoIsInvariantExceptBnpo) {
  for (const std::string loss_type : {"grpo", "dapo", "dr_grpo"}) {
    SCOPED_TRACE(loss_type);
    expect_invariant([&](int64_t a) { return run_grpo(loss_type, a); });
  }
  // bnpo's per-micro-batch token mean weighs a micro-batch of short completions like one of long
  // ones: 2 x 4 must differ from 8 x 1, by far more than the tolerance.
  const double d = max_rel_diff(run_grpo("bnpo", 1), run_grpo("bnpo", 2));
  EXPECT_GT(d, 100 * kRelTol);
  std::fprintf(stderr, "  bnpo, 4 x 2 against 8 x 1: max relative difference %.2e\n", d);
}

TEST(GradientAccumulation, AnUndividedBatchNamesTheNumbers) {
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  EXPECT_TRUE(nr_test::throws_with([&] { GRPOTrainer(policy, *ref, ascii_share, tok, grpo_config("dapo", 3)); },
                                   "grpo: a batch of 8 completions (batch_size x num_generations) does not divide "
                                   "into gradient_accumulation_steps 3"));
}
