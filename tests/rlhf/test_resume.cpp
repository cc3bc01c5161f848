// Resume: a run killed with SIGKILL at any moment (before its first checkpoint, between two, halfway
// through writing one, halfway through the final save) and continued with resume=latest ends with
// the same bytes as the run that was never stopped: the weights bit for bit, every metric but the
// wall-clock tokens_per_s. For pretrain, the reward model, DPO and PPO on a tiny pipeline; the
// kills come from ./nanorlhf itself at named points (NANORLHF_KILL_AT, rlhf/kill_point.h).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/atomic_file.h"
#include "nn/module.h"
#include "nn/optimization.h"
#include "rlhf/batching.h"
#include "rlhf/config.h"
#include "rlhf/stages.h"
#include "rlhf/train_state.h"
#include "test_util.h"

using namespace nanorlhf::rlhf;
using nlohmann::json;
namespace fs = std::filesystem;

extern char **environ;

namespace {

void run_stage(const std::string &stage, const json &set) {
  Config c(find_stage(stage).schema());
  c.merge(set);
  find_stage(stage).run(c, true);
}

std::string &tiny_root() {
  static std::string root;
  return root;
}

struct Tiny {
  std::string root, data, pretrain, sft, rm, pairs;
  json pretrain_args, rm_args, dpo_args, ppo_args;  // each stage's config but `out`
};

const Tiny &tiny() {
  static const Tiny t = [] {
    Tiny t;
    t.root = tiny_root() = (fs::temp_directory_path() / ("nanorlhf_test_resume_" + std::to_string(::getpid()))).string();
    fs::remove_all(t.root);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(tiny_root(), ec);
    });
    t.data = t.root + "/data", t.pretrain = t.root + "/pretrain", t.sft = t.root + "/sft", t.rm = t.root + "/rm";
    t.pairs = t.root + "/pairs.jsonl";
    run_stage("world", {{"out", t.data}, {"n_pretrain_docs", 200}, {"n_sft", 20}, {"n_prompts", 20}, {"n_eval_prompts", 10},
                       {"sft_multi_turn_fraction", 0.0}});
    // Dropout on and a cosine schedule with warm-up: the random state and the step count matter.
    t.pretrain_args = {{"data", t.data + "/pretrain.jsonl"}, {"steps", 12}, {"batch_size", 4}, {"vocab_size", 300},
                       {"warmup", 3}, {"samples", 1}, {"sample_every", 5}, {"sample_tokens", 8}, {"eval_every", 4},
                       {"log_every", 3}, {"model.ctx", 64}, {"model.d_model", 32}, {"model.n_layer", 1},
                       {"model.n_head", 2}, {"model.dropout", 0.1}};
    json p = t.pretrain_args;
    p["out"] = t.pretrain, p["steps"] = 2;
    run_stage("pretrain", p);
    run_stage("sft", {{"data", t.data + "/sft.jsonl"}, {"init", t.pretrain}, {"out", t.sft}, {"steps", 2}, {"batch_size", 4}});
    std::ofstream(t.pairs) << R"({"prompt": "Count to 3.", "chosen": "1, 2, 3.", "rejected": "1, 2."})" "\n"
                           << R"({"prompt": "Say hello to Ann.", "chosen": "Hello, Ann!", "rejected": "Go away."})" "\n"
                           << R"({"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."})" "\n";
    // Epochs of 3 pairs in batches of 2: the sampler's position inside an epoch matters.
    t.rm_args = {{"sft", t.sft}, {"data", t.pairs}, {"eval_data", t.pairs}, {"world", ""}, {"steps", 10},
                 {"batch_size", 2}, {"warmup", 2}, {"log_every", 3}, {"eval_every", 4}};
    json r = t.rm_args;
    r["out"] = t.rm, r["steps"] = 2;
    run_stage("rm", r);
    t.dpo_args = {{"data", t.pairs}, {"policy", t.sft}, {"world", ""}, {"steps", 10}, {"batch_size", 2}, {"log_every", 3}};
    t.ppo_args = {{"policy", t.sft}, {"reward_model", t.rm}, {"prompts", t.data + "/prompts.jsonl"},
                  {"eval_prompts", t.data + "/eval_prompts.jsonl"}, {"world", t.data}, {"eval_size", 4},
                  {"eval_max_new_tokens", 6}, {"eval_every", 3}, {"steps", 7}, {"batch_size", 4},
                  {"max_new_tokens", 6}, {"ppo_epochs", 2}, {"num_mini_batches", 2}, {"adaptive_kl", true}};
    return t;
  }();
  return t;
}

// Runs ./nanorlhf <stage> with `args` (one --key=value each) and NANORLHF_KILL_AT=kill_at; returns
// the wait status.
int run_binary(const std::string &stage, const json &args, const std::string &kill_at) {
  std::vector<std::string> argv = {"./nanorlhf", stage};
  for (const auto &[k, v] : args.items()) argv.push_back("--" + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  std::vector<std::string> env;
  for (char **e = environ; *e; ++e)
    if (std::string(*e).rfind("NANORLHF_KILL_AT=", 0) != 0) env.emplace_back(*e);
  env.push_back("NANORLHF_KILL_AT=" + kill_at);
  std::vector<char *> a, e;
  for (auto &s : argv) a.push_back(s.data());
  for (auto &s : env) e.push_back(s.data());
  a.push_back(nullptr), e.push_back(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 2);  // the progress lines
    ::execve(a[0], a.data(), e.data());
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return status;
}

// metrics.jsonl without the wall-clock tokens_per_s.
std::vector<json> metrics_of(const std::string &dir) {
  std::vector<json> out;
  std::istringstream in(nanorlhf::nn::read_file(dir + "/metrics.jsonl"));
  for (std::string line; std::getline(in, line);) {
    json j = json::parse(line);
    j.erase("tokens_per_s");
    out.push_back(j);
  }
  return out;
}

std::string bytes(const std::string &path) { return nanorlhf::nn::read_file(path); }

// The same final files as `ref`: weights, tokenizer, samples, metrics (but tokens_per_s).
::testing::AssertionResult same_run(const std::string &ref, const std::string &dir, const std::vector<std::string> &files) {
  for (const std::string &f : files) {
    if (!fs::exists(dir + "/" + f)) return ::testing::AssertionFailure() << dir << " has no " << f;
    if (bytes(ref + "/" + f) != bytes(dir + "/" + f)) return ::testing::AssertionFailure() << f << " differs from " << ref;
  }
  const auto a = metrics_of(ref), b = metrics_of(dir);
  if (a != b) {
    std::string first;
    for (size_t i = 0; i < std::max(a.size(), b.size()) && first.empty(); ++i)
      if (i >= a.size() || i >= b.size() || a[i] != b[i])
        first = "line " + std::to_string(i + 1) + ": " + (i < a.size() ? a[i].dump() : "none") + " vs " +
                (i < b.size() ? b[i].dump() : "none");
    return ::testing::AssertionFailure() << "metrics.jsonl differs (" << a.size() << " vs " << b.size() << " records), "
                                         << first;
  }
  for (const auto &e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos || name.rfind(".staging-", 0) == 0)
      return ::testing::AssertionFailure() << "a killed run's temporary stays: " << name;
  }
  return ::testing::AssertionSuccess();
}

// Kills `stage` at each point, resumes it in-process with resume=latest, and compares it with
// the uninterrupted run (no checkpoints at all: saving must not change the run either).
void kill_and_resume(const std::string &stage, const json &args, int64_t save_every,
                     const std::vector<std::string> &kill_points, const std::vector<std::string> &files) {
  if (!fs::exists("./nanorlhf")) GTEST_SKIP() << "no ./nanorlhf in the working directory (ctest runs in the build folder)";
  const std::string ref = tiny().root + "/" + stage + "_ref";
  json a = args;
  a["out"] = ref;
  run_stage(stage, a);
  for (const std::string &at : kill_points) {
    SCOPED_TRACE(stage + " killed at " + at);
    const std::string out = tiny().root + "/" + stage + "_killed_" + at.substr(0, at.find(':')) + at.substr(at.find(':') + 1);
    json k = args;
    k["out"] = out, k["save_every"] = save_every;
    const int status = run_binary(stage, k, at);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run was not killed at " << at;
    EXPECT_FALSE(fs::exists(out + "/model.safetensors")) << "a run killed at " << at << " looks finished";
    k["resume"] = "latest";
    run_stage(stage, k);
    EXPECT_TRUE(same_run(ref, out, files));
  }
}

TEST(Resume, PretrainKilledAnywhereEndsBitwiseAsTheUninterruptedRun) {
  kill_and_resume("pretrain", tiny().pretrain_args, 4, {"step:3", "step:7", "save:8", "step:10", "final:0"},
                  {"model.safetensors", "tokenizer.json", "samples.txt"});
}

TEST(Resume, RewardModelKilledAnywhereEndsBitwiseAsTheUninterruptedRun) {
  kill_and_resume("rm", tiny().rm_args, 3, {"step:2", "save:6", "step:8", "final:0"}, {"model.safetensors"});
}

TEST(Resume, DPOKilledAnywhereEndsBitwiseAsTheUninterruptedRun) {
  kill_and_resume("dpo", tiny().dpo_args, 4, {"step:3", "save:4", "step:9", "final:0"}, {"model.safetensors"});
}

TEST(Resume, PPOKilledAnywhereEndsBitwiseAsTheUninterruptedRun) {
  // Adaptive KL, two epochs of two minibatches, an oracle evaluation every 3 iterations.
  kill_and_resume("ppo", tiny().ppo_args, 2, {"step:2", "save:4", "step:6", "final:0"},
                  {"model.safetensors", "samples.txt"});
}

// The other trainers, each killed once between checkpoints and once mid-save.
json policy_args(json extra) {
  json a = {{"policy", tiny().sft}, {"reward_model", tiny().rm}, {"prompts", tiny().data + "/prompts.jsonl"},
            {"world", ""}, {"steps", 6}, {"batch_size", 2}, {"max_new_tokens", 6}};
  a.update(extra);
  return a;
}

TEST(Resume, EveryOtherTrainerKilledAndResumedEndsBitwiseAsTheUninterruptedRun) {
  const std::vector<std::string> points = {"step:5", "save:4"};
  kill_and_resume("sft", {{"data", tiny().data + "/sft.jsonl"}, {"init", tiny().pretrain}, {"steps", 8},
                          {"batch_size", 3}, {"warmup", 2}, {"log_every", 3}},  // dropout 0.1, from pretrain
                  2, points, {"model.safetensors", "samples.txt"});
  kill_and_resume("reinforce", policy_args({{"rloo_k", 1}}), 2, points, {"model.safetensors"});  // moving baseline
  kill_and_resume("grpo", policy_args({{"num_generations", 2}, {"num_iterations", 2}}), 2, points, {"model.safetensors"});
  kill_and_resume("raft", policy_args({{"k", 2}, {"minibatch_size", 1}}), 2, points, {"model.safetensors"});
  kill_and_resume("online_dpo", policy_args({{"k", 2}}), 2, points, {"model.safetensors"});
  kill_and_resume("kto", {{"data", tiny().pairs}, {"policy", tiny().sft}, {"world", ""}, {"steps", 7}, {"batch_size", 2}},
                  2, points, {"model.safetensors"});
}

TEST(Resume, AResumeWithOtherSettingsOrOfAFinishedRunIsAClearError) {
  if (!fs::exists("./nanorlhf")) GTEST_SKIP() << "no ./nanorlhf in the working directory (ctest runs in the build folder)";
  const std::string out = tiny().root + "/dpo_bad_resume";
  json k = tiny().dpo_args;
  k["out"] = out, k["save_every"] = 3;
  ASSERT_TRUE(WIFSIGNALED(run_binary("dpo", k, "step:5")));
  const std::string metrics = bytes(out + "/metrics.jsonl");
  json other = k;
  other["beta"] = 0.3, other["resume"] = "latest";
  EXPECT_TRUE(nr_test::throws_with([&] { run_stage("dpo", other); }, "beta = 0.3 (checkpoint: 0.1)"));
  EXPECT_EQ(bytes(out + "/metrics.jsonl"), metrics) << "a refused resume changed the run";
  json bogus = k;
  bogus["resume"] = out + "/checkpoint-4";
  EXPECT_TRUE(nr_test::throws_with([&] { run_stage("dpo", bogus); }, "its checkpoints: checkpoint-3"));
  json from3 = k;
  from3["resume"] = out + "/checkpoint-3";
  run_stage("dpo", from3);
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  from3["resume"] = "latest";
  EXPECT_TRUE(nr_test::throws_with([&] { run_stage("dpo", from3); }, "holds a finished run"));
}

// `nanorlhf pipeline --resume` after a kill inside the reward model's stage: the finished stages are
// kept, the reward model continues from its checkpoint, the rest run; every stage's weights and the
// summary (but its timings) are those of the pipeline that never stopped.
TEST(Resume, APipelineKilledMidStageResumesToTheSameSummary) {
  if (!fs::exists("./nanorlhf")) GTEST_SKIP() << "no ./nanorlhf in the working directory (ctest runs in the build folder)";
  const json args = {{"stages", "pretrain,sft,preferences,rm,dpo"}, {"samples", 1},
                     {"world.n_pretrain_docs", 200}, {"world.n_sft", 20}, {"world.n_prompts", 40},
                     {"world.n_eval_prompts", 6}, {"world.sft_multi_turn_fraction", 0.0},
                     {"pretrain.steps", 60}, {"pretrain.batch_size", 4}, {"pretrain.vocab_size", 300},
                     {"pretrain.samples", 0}, {"pretrain.model.ctx", 64}, {"pretrain.model.d_model", 32},
                     {"pretrain.model.n_layer", 1}, {"pretrain.model.n_head", 2}, {"sft.steps", 20},
                     {"sft.batch_size", 4}, {"sft.samples", 0}, {"preferences.k", 4}, {"preferences.max_new_tokens", 6},
                     {"rm.steps", 6}, {"rm.batch_size", 4}, {"dpo.batch_size", 4}, {"eval.max_new_tokens", 8}};
  const std::string ref = tiny().root + "/pipeline_ref", out = tiny().root + "/pipeline_killed";
  json a = args;
  a["out"] = ref;
  run_stage("pipeline", a);
  json k = args;
  k["out"] = out, k["save_every"] = 2;
  const int status = run_binary("pipeline", k, "rm:step:5");
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the pipeline was not killed in the rm stage";
  ASSERT_TRUE(fs::exists(out + "/rm/checkpoint-4")) << "the rm stage saved no checkpoint before its kill";
  const std::string sft_weights = bytes(out + "/sft/model.safetensors");
  k["resume"] = true;
  run_stage("pipeline", k);
  EXPECT_EQ(bytes(out + "/sft/model.safetensors"), sft_weights);
  for (const char *stage : {"pretrain", "sft", "rm", "dpo"})
    EXPECT_EQ(bytes(ref + "/" + std::string(stage) + "/model.safetensors"),
              bytes(out + "/" + std::string(stage) + "/model.safetensors")) << stage;
  EXPECT_EQ(bytes(ref + "/preferences/train.jsonl"), bytes(out + "/preferences/train.jsonl"));
  auto numbers = [](const std::string &dir) {
    json s = json::parse(bytes(dir + "/summary.json"));
    for (auto &row : s) row.erase("seconds"), row.erase("eval_seconds");
    return s;
  };
  EXPECT_EQ(numbers(ref), numbers(out));
  EXPECT_EQ(metrics_of(ref + "/rm"), metrics_of(out + "/rm"));
}

// The parts of a checkpoint read back exactly: AdamW's moments and step, the sampler's position
// inside an epoch, the random state, non-finite doubles.
struct TwoParams : nanorlhf::nn::Module {
  nanorlhf::Tensor w, b;
  TwoParams() {
    w = register_parameter("w", nanorlhf::randn({3, 2}, {.requires_grad = true}));
    b = register_parameter("b", nanorlhf::zeros({2}, {.requires_grad = true}));
  }
};

TEST(TrainState, AdamWSamplerRandomStateAndValuesRoundTripExactly) {
  using namespace nanorlhf;
  manual_seed(3);
  TwoParams m;
  optim::Optimization opt(m, {.lr = 0.1, .warmup = 2}, 10);
  auto step = [&](int64_t i) {
    ((m.w * m.w).sum() + (m.b * 3.0).sum()).backward();
    opt.step(i);
  };
  step(0), step(1);
  EpochSampler s(5, 2, 7, ShortBatch::kEndsEpoch);
  for (int i = 0; i < 4; ++i) s.next();  // into the second epoch
  double nan_value = std::nan(""), inf_value = -HUGE_VAL, x = 0.1 + 0.2;
  std::vector<double> v = {1.0 / 3.0, std::nan(""), 1e-310};
  TrainState st;
  st.add("model", m).add("optimizer", opt).add("batches", s).add("a", nan_value).add("b", inf_value).add("x", x).add("v", v);
  const std::string dir = (fs::temp_directory_path() / ("nanorlhf_train_state_" + std::to_string(::getpid())) / "checkpoint-2").string();
  fs::remove_all(fs::path(dir).parent_path());
  st.save(dir, {{"step", 2}}, {});
  EXPECT_EQ(latest_checkpoint(fs::path(dir).parent_path().string()), dir);
  // What the uninterrupted run does next.
  step(2);
  const std::vector<double> w_next = m.w.to_vector<double>();
  const std::vector<size_t> rows_next = s.next();
  const double r_next = randn({4}).to_vector<double>()[0];

  TwoParams m2;
  optim::Optimization opt2(m2, {.lr = 0.1, .warmup = 2}, 10);
  EpochSampler s2(5, 2, 7, ShortBatch::kEndsEpoch);
  double a2 = 0, b2 = 0, x2 = 0;
  std::vector<double> v2;
  TrainState st2;
  st2.add("model", m2).add("optimizer", opt2).add("batches", s2).add("a", a2).add("b", b2).add("x", x2).add("v", v2);
  EXPECT_EQ(st2.load(dir), (json{{"step", 2}}));
  ((m2.w * m2.w).sum() + (m2.b * 3.0).sum()).backward();
  opt2.step(2);
  EXPECT_EQ(m2.w.to_vector<double>(), w_next) << "AdamW's moments or step did not round-trip";
  EXPECT_EQ(s2.next(), rows_next);
  EXPECT_EQ(randn({4}).to_vector<double>()[0], r_next);
  EXPECT_TRUE(std::isnan(a2));
  EXPECT_EQ(b2, -HUGE_VAL);
  EXPECT_EQ(x2, 0.1 + 0.2);
  ASSERT_EQ(v2.size(), 3u);
  EXPECT_EQ(v2[0], 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(v2[1]));
  EXPECT_EQ(v2[2], 1e-310);
  fs::remove_all(fs::path(dir).parent_path());
}

}  // namespace
