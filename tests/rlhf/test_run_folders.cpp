// Nothing already written is lost: a command checks its inputs before it touches its out folder, a
// folder holding a finished run is refused unless --overwrite, an overwriting run that fails (or is
// killed) leaves the old run byte for byte, and the temporaries of killed processes are cleaned.
// One tiny pipeline (world, pretrain, SFT, DPO; a few steps each) is built once for the suite.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "nn/atomic_file.h"
#include "nn/module.h"
#include "nn/optimization.h"
#include "rlhf/data.h"
#include "rlhf/training_loop.h"
#include "rlhf/config.h"
#include "rlhf/stages.h"
#include "test_util.h"

using namespace nanorlhf::rlhf;
namespace fs = std::filesystem;

namespace {

// Every file below `dir` (relative path -> bytes).
std::map<std::string, std::string> snapshot(const std::string &dir) {
  std::map<std::string, std::string> out;
  for (const auto &e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = nanorlhf::nn::read_file(e.path().string());
  return out;
}

void run_stage(const std::string &stage, nlohmann::json set) {
  Config c(find_stage(stage).schema());
  c.merge(set);
  find_stage(stage).run(c, true);
}

struct Tiny {
  std::string root, data, pretrain, sft, dpo, pairs;
};

std::string &tiny_root() {
  static std::string root;
  return root;
}

const Tiny &tiny() {
  static const Tiny t = [] {
    Tiny t;
    t.root = tiny_root() = (fs::temp_directory_path() / ("nanorlhf_test_run_folders_" + std::to_string(::getpid()))).string();
    fs::remove_all(t.root);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(tiny_root(), ec);
    });
    t.data = t.root + "/data", t.pretrain = t.root + "/pretrain", t.sft = t.root + "/sft", t.dpo = t.root + "/dpo";
    t.pairs = t.root + "/pairs.jsonl";
    run_stage("world", {{"out", t.data}, {"n_pretrain_docs", 200}, {"n_sft", 20}, {"n_prompts", 20}, {"n_eval_prompts", 10},
                       {"sft_multi_turn_fraction", 0.0}});
    run_stage("pretrain", {{"data", t.data + "/pretrain.jsonl"}, {"out", t.pretrain}, {"steps", 2}, {"batch_size", 4},
                           {"vocab_size", 300}, {"warmup", 0}, {"samples", 0}, {"model.ctx", 96}, {"model.d_model", 32},
                           {"model.n_layer", 1}, {"model.n_head", 2}});
    run_stage("sft", {{"data", t.data + "/sft.jsonl"}, {"init", t.pretrain}, {"out", t.sft}, {"steps", 2}, {"batch_size", 4}});
    std::ofstream(t.pairs) << R"({"prompt": "Count to 3.", "chosen": "1, 2, 3.", "rejected": "1, 2."})" "\n"
                           << R"({"prompt": "Say hello to Ann.", "chosen": "Hello, Ann!", "rejected": "Go away."})" "\n";
    run_stage("dpo", {{"data", t.pairs}, {"policy", t.sft}, {"out", t.dpo}, {"steps", 2}, {"batch_size", 2}, {"world", ""}});
    return t;
  }();
  return t;
}

nlohmann::json dpo_args(nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json a = {{"data", tiny().pairs}, {"policy", tiny().sft}, {"out", tiny().dpo}, {"steps", 2}, {"batch_size", 2},
                      {"world", ""}};
  a.update(extra);
  return a;
}

// The call fails with a message holding `what`, and the finished DPO run is byte-identical after it.
::testing::AssertionResult fails_and_keeps_the_run(const std::function<void()> &f, const std::string &what) {
  const auto before = snapshot(tiny().dpo);
  auto r = nr_test::throws_with(f, what);
  if (!r) return r;
  if (snapshot(tiny().dpo) != before) return ::testing::AssertionFailure() << "the finished run in the folder changed";
  return ::testing::AssertionSuccess();
}

std::string write(const std::string &name, const std::string &text) {
  const std::string p = tiny().root + "/" + name;
  std::ofstream(p) << text;
  return p;
}

TEST(RunFolders, AFolderHoldingARunIsRefusedByEveryCommandWithoutOverwrite) {
  const std::string refuse = "holds a run already";
  EXPECT_TRUE(fails_and_keeps_the_run([] { run_stage("dpo", dpo_args()); }, refuse));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [] { run_stage("sft", {{"data", tiny().data + "/sft.jsonl"}, {"init", tiny().pretrain}, {"out", tiny().dpo}, {"steps", 1}}); },
      refuse));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [] {
        run_stage("pretrain", {{"data", tiny().data + "/pretrain.jsonl"}, {"out", tiny().dpo}, {"steps", 1}, {"vocab_size", 300},
                               {"model.ctx", 96}, {"model.d_model", 32}, {"model.n_layer", 1}, {"model.n_head", 2}});
      },
      refuse));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [] {
        run_stage("eval", {{"policy", tiny().sft}, {"ref", tiny().sft}, {"prompts", tiny().data + "/eval_prompts.jsonl"},
                           {"world", tiny().data}, {"out", tiny().dpo}, {"n_prompts", 2}});
      },
      refuse));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [] {
        run_stage("grpo", {{"policy", tiny().sft}, {"reward_funcs", "verifier"}, {"prompts", tiny().data + "/prompts.jsonl"},
                           {"world", ""}, {"out", tiny().dpo}, {"steps", 1}, {"batch_size", 1}, {"num_generations", 2}});
      },
      refuse));
}

TEST(RunFolders, BadInputsWithOverwriteAreErrorsBeforeTheOldRunIsTouched) {
  const std::string bad_json = write("bad.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{oops\n");
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"data", bad_json}})); },
                                      bad_json + ":2"));
  const std::string no_field = write("nofield.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\"}\n");
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"data", no_field}})); },
                                      "rejected"));
  const std::string empty = write("empty.jsonl", "");
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"data", empty}})); },
                                      "no preference pairs"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"data", tiny().root + "/missing.jsonl"}})); }, "missing.jsonl"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"beta", -1}})); }, "beta"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"loss_type", "dpo++"}})); },
                                      "loss_type"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"policy", tiny().root + "/nope"}})); },
                                      "nope"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"ref", tiny().data}})); },
                                      "data/config.json"));
  const std::string bad_label = write("unpaired.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\", \"label\": \"yes\"}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] { run_stage("kto", {{"data", bad_label}, {"policy", tiny().sft}, {"out", tiny().dpo}, {"world", ""}, {"overwrite", true}}); },
      bad_label + ":1"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] {
        run_stage("grpo", {{"policy", tiny().sft}, {"reward_funcs", "oracle"}, {"prompts", tiny().data + "/prompts.jsonl"},
                           {"world", ""}, {"out", tiny().dpo}, {"overwrite", true}});
      },
      "unknown reward function 'oracle'"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] {
        run_stage("reinforce", {{"policy", tiny().sft}, {"reward_model", tiny().root + "/no_rm"},
                                {"prompts", tiny().data + "/prompts.jsonl"}, {"world", ""}, {"out", tiny().dpo}, {"overwrite", true}});
      },
      "no_rm"));
  // A reward model whose tokenizer has the policy's size but other merges (pretrained on another world).
  const std::string other = tiny().root + "/other";
  run_stage("world", {{"out", other + "/data"}, {"seed", 99}, {"n_pretrain_docs", 200}, {"n_sft", 20}, {"n_prompts", 20},
                      {"n_eval_prompts", 10}, {"sft_multi_turn_fraction", 0.0}});
  run_stage("pretrain", {{"data", other + "/data/pretrain.jsonl"}, {"out", other + "/pretrain"}, {"steps", 1},
                         {"batch_size", 4}, {"vocab_size", 300}, {"warmup", 0}, {"samples", 0}, {"model.ctx", 96},
                         {"model.d_model", 32}, {"model.n_layer", 1}, {"model.n_head", 2}});
  run_stage("rm", {{"sft", other + "/pretrain"}, {"data", tiny().pairs}, {"eval_data", ""}, {"world", ""},
                   {"out", other + "/rm"}, {"steps", 1}, {"batch_size", 2}});
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] {
        run_stage("ppo", {{"policy", tiny().sft}, {"reward_model", other + "/rm"}, {"prompts", tiny().data + "/prompts.jsonl"},
                          {"world", ""}, {"out", tiny().dpo}, {"overwrite", true}});
      },
      "uses another tokenizer than the policy"));
  // The same for a DPO reference: the other world's pretrained model, the same vocabulary size.
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"ref", other + "/pretrain"}})); },
                                      "the same count but different merges"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"stpes", 2}})); }, "steps"));
  // Sizes are checked before anything is allocated or read for minutes: the key and the memory named.
  auto pretrain = [&](nlohmann::json extra) {
    nlohmann::json a = {{"data", tiny().data + "/pretrain.jsonl"}, {"out", tiny().dpo}, {"overwrite", true}, {"steps", 1}};
    a.update(extra);
    run_stage("pretrain", a);
  };
  EXPECT_TRUE(fails_and_keeps_the_run([&] { pretrain({{"batch_size", 1000000000000LL}}); }, "batch_size 1000000000000"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { pretrain({{"model.d_model", 10000000}}); }, "model.d_model 10000000"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { pretrain({{"batch_size", 1000000000000LL}}); }, "GB of memory"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"batch_size", 1000000000}})); },
      "dpo: a micro-batch of 1000000000 pairs (batch_size 1000000000"));
  // A config file whose number overflows names the file and the key.
  const std::string huge = write("huge.json", "{\"steps\": 1e400}");
  EXPECT_TRUE(fails_and_keeps_the_run(
      [&] {
        Config c(find_stage("dpo").schema());
        c.load_file(huge);
      },
      "'" + huge + "': invalid JSON at key 'steps'"));
}

// More bad inputs of every command, each into the finished run with --overwrite: the message names
// the file and line or the key, and the run in the folder stays byte for byte.
TEST(RunFolders, EveryCommandsBadInputsNameTheFileLineOrKey) {
  const std::string out = tiny().dpo, data = tiny().data;
  auto stage = [&](const std::string &name, nlohmann::json a) {
    return [name, a, out]() mutable {
      a["out"] = out, a["overwrite"] = true;
      run_stage(name, a);
    };
  };
  const std::string bad_role = write("bad_role.jsonl", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(stage("sft", {{"data", bad_role}, {"init", tiny().pretrain}, {"steps", 1}}), bad_role + ":1"));
  const std::string no_completion = write("no_completion.jsonl", "{\"prompt\": \"hi\"}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(stage("sft", {{"data", no_completion}, {"init", tiny().pretrain}, {"steps", 1}}),
                                      no_completion + ":1"));
  const std::string bad_text = write("bad_text.jsonl", "{\"text\": 5}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(stage("pretrain", {{"data", bad_text}, {"steps", 1}}), bad_text + ":1"));
  const std::string bad_pairs = write("bad_pairs.jsonl", "{\"prompt\": \"a\", \"chosen\": \"\", \"rejected\": \"c\"}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(
      stage("rm", {{"sft", tiny().sft}, {"data", bad_pairs}, {"eval_data", ""}, {"world", ""}, {"steps", 1}}), bad_pairs + ":1"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      stage("rm", {{"sft", tiny().sft}, {"data", tiny().pairs}, {"eval_data", tiny().root + "/no_heldout.jsonl"}, {"world", ""},
                   {"steps", 1}}),
      "no_heldout.jsonl"));
  const std::string bad_prompts = write("bad_prompts.jsonl", "{\"prompt\": \"a\"}\n[1, 2]\n");
  EXPECT_TRUE(fails_and_keeps_the_run(
      stage("eval", {{"policy", tiny().sft}, {"ref", tiny().sft}, {"prompts", bad_prompts}, {"world", data}}), bad_prompts + ":2"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      stage("eval", {{"policy", tiny().sft}, {"ref", tiny().sft}, {"prompts", data + "/eval_prompts.jsonl"},
                     {"world", tiny().root + "/no_world"}}),
      "no_world"));
  EXPECT_TRUE(fails_and_keeps_the_run(
      stage("preferences", {{"policy", tiny().sft}, {"prompts", bad_prompts}, {"world", data}}), bad_prompts + ":2"));
  auto grpo = [&](nlohmann::json extra) {
    nlohmann::json a = {{"policy", tiny().sft}, {"reward_funcs", "verifier"}, {"prompts", data + "/prompts.jsonl"}, {"world", ""}};
    a.update(extra);
    return stage("grpo", a);
  };
  EXPECT_TRUE(fails_and_keeps_the_run(grpo({{"num_generations", 1}}), "'num_generations' must be >= 2"));
  EXPECT_TRUE(fails_and_keeps_the_run(grpo({{"epsilon", 0}}), "'epsilon' must be > 0"));
  EXPECT_TRUE(fails_and_keeps_the_run(grpo({{"reward_weights", "1,2"}}), "reward_weights: 2 weights"));
  EXPECT_TRUE(fails_and_keeps_the_run(grpo({{"prompts", bad_prompts}}), bad_prompts + ":2"));
  const std::string no_label = write("no_label.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  auto kto = [&](const std::string &file) {
    return stage("kto", {{"data", file}, {"policy", tiny().sft}, {"world", ""}});
  };
  EXPECT_TRUE(fails_and_keeps_the_run(kto(no_label), no_label + ":1"));
  const std::string int_label = write("int_label.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\", \"label\": 1}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(kto(int_label), int_label + ":1"));
  const std::string mixed = write("mixed.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\", \"label\": true}\n"
                                                 "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n");
  EXPECT_TRUE(fails_and_keeps_the_run(kto(mixed), mixed + ":2"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"label_smoothing", 0.6}})); },
                                      "label_smoothing"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"data", data}})); }, data));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("dpo", dpo_args({{"overwrite", true}, {"device", "tpu"}})); }, "tpu"));
  EXPECT_TRUE(fails_and_keeps_the_run([&] { run_stage("ppo", {{"policy", tiny().sft}, {"reward_model", tiny().sft},
                                                             {"prompts", data + "/prompts.jsonl"}, {"world", ""},
                                                             {"out", out}, {"overwrite", true}, {"cliprange", 0}}); },
                                      "cliprange"));
}

TEST(RunFolders, OverwriteReplacesTheRunWholeAndCleansWhatKilledRunsLeft) {
  // Leftovers of a process that no longer runs: a temporary of an atomic write and a staging folder.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string tmp = tiny().dpo + "/model.safetensors.tmp." + std::to_string(dead);
  const std::string staging = tiny().dpo + "/.staging-" + std::to_string(dead);
  std::ofstream(tmp) << "half a checkpoint";
  fs::create_directories(staging);
  std::ofstream(tiny().dpo + "/stale_file_of_the_old_run.txt") << "old";
  const std::string old_config = nanorlhf::nn::read_file(tiny().dpo + "/config.json");

  run_stage("dpo", dpo_args({{"overwrite", true}, {"beta", 0.2}}));
  EXPECT_FALSE(fs::exists(tmp)) << "a dead process's temporary stays";
  EXPECT_FALSE(fs::exists(staging)) << "a dead process's staging folder stays";
  EXPECT_FALSE(fs::exists(tiny().dpo + "/stale_file_of_the_old_run.txt")) << "the old run's files are mixed with the new";
  for (const auto &e : fs::directory_iterator(tiny().dpo))
    EXPECT_EQ(e.path().filename().string().rfind(".staging", 0), std::string::npos) << e.path();
  const std::string cfg = nanorlhf::nn::read_file(tiny().dpo + "/config.json");
  EXPECT_NE(cfg, old_config);
  EXPECT_NE(cfg.find("\"beta\": 0.2"), std::string::npos);
  for (const char *f : {"model.safetensors", "metrics.jsonl", "tokenizer.json"}) EXPECT_TRUE(fs::exists(tiny().dpo + "/" + f)) << f;
}

TEST(RunFolders, AnOverwritingRunKilledMidwayLeavesTheOldRunAsItWas) {
  const std::string bin = "./nanorlhf";  // ctest runs the suites in the build folder
  if (!fs::exists(bin)) GTEST_SKIP() << "no ./nanorlhf in the working directory";
  const auto before = snapshot(tiny().dpo);
  pid_t child = fork();
  if (child == 0) {
    // Long enough to be killed mid-way: thousands of steps on the two pairs.
    ::execl(bin.c_str(), bin.c_str(), "dpo", "--data", tiny().pairs.c_str(), "--policy", tiny().sft.c_str(), "--out",
            tiny().dpo.c_str(), "--steps", "100000", "--batch_size", "2", "--world=", "--overwrite",
            "--log_every", "1", (char *)nullptr);
    _exit(127);
  }
  // Kill it once its staging folder holds metrics.
  bool staged = false;
  for (int i = 0; i < 300 && !staged; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto &e : fs::directory_iterator(tiny().dpo))
      if (e.path().filename().string().rfind(".staging-", 0) == 0 && fs::exists(e.path() / "metrics.jsonl") &&
          fs::file_size(e.path() / "metrics.jsonl") > 0)
        staged = true;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(staged) << "the overwriting run never started writing";
  auto after = snapshot(tiny().dpo);
  for (auto it = after.begin(); it != after.end();)  // the killed run's own staging folder is its only trace
    it = it->first.rfind(".staging-", 0) == 0 ? after.erase(it) : std::next(it);
  EXPECT_EQ(after, before) << "the finished run changed under a killed --overwrite run";
}

}  // namespace

namespace {

// A model with one parameter whose gradient we set by hand.
struct OneParam : nanorlhf::nn::Module {
  nanorlhf::Tensor w;
  OneParam() { w = register_parameter("w", nanorlhf::ones({2, 2}, {.requires_grad = true})); }
};

TEST(NonFinite, ANanGradientStopsBeforeTheWeightsChangeOrIsSkippedWhenAsked) {
  using namespace nanorlhf;
  OneParam m;
  auto nan_grad = [&] { (m.w * std::nan("")).sum().backward(); };
  optim::Optimization stop(m, {.lr = 0.1, .warmup = 0, .schedule = "constant"}, 10);
  nan_grad();
  EXPECT_TRUE(nr_test::throws_with([&] { stop.step(3); }, "step 4: the gradient norm is nan"));
  EXPECT_EQ(m.w.to_vector<double>(), std::vector<double>(4, 1.0)) << "the weights changed";
  optim::Optimization skip(m, {.lr = 0.1, .warmup = 0, .schedule = "constant", .skip_nonfinite = true}, 10);
  skip.zero_grad();
  nan_grad();
  optim::Optimization::Stats st = skip.step(0);
  EXPECT_TRUE(st.skipped);
  EXPECT_EQ(m.w.to_vector<double>(), std::vector<double>(4, 1.0));
  (m.w * 2.0).sum().backward();  // the next, finite step is taken
  EXPECT_FALSE(skip.step(1).skipped);
  EXPECT_NE(m.w.to_vector<double>(), std::vector<double>(4, 1.0));
}

TEST(NonFinite, TheLoopStopsOnANanLossNamingTheStepAndCountsSkippedSteps) {
  const std::string dir = tiny().root + "/loop";
  {
    RunDir run(dir);
    TrainingLoop loop{.task = "toy", .options = {.steps = 5, .log_every = 1}, .quiet = true};
    EXPECT_TRUE(nr_test::throws_with(
        [&] {
          run_training_loop(loop, run, [](int64_t i) {
            return StepOutput{{{"loss", i == 2 ? std::nan("") : 1.0}, {"grad_norm", 1.0}}, 0};
          });
        },
        "toy step 3: the loss is nan (training diverged); the run stops and saves nothing"));
  }
  RunDir run(dir, /*overwrite=*/true);
  TrainingLoop loop{.task = "toy", .options = {.steps = 4, .log_every = 1}, .quiet = true};
  run_training_loop(loop, run, [](int64_t i) {  // steps 2 and 3 skipped by the optimizer
    const double g = (i == 1 || i == 2) ? std::nan("") : 1.0;
    return StepOutput{{{"loss", g}, {"grad_norm", g}}, 0};
  });
  std::vector<double> skipped;
  for (const auto &[line, rec] : read_jsonl(run.path("metrics.jsonl")))
    skipped.push_back(rec.contains("skipped_steps") ? rec["skipped_steps"].get<double>() : 0.0);
  EXPECT_EQ(skipped, (std::vector<double>{0, 1, 2, 2}));
}

}  // namespace
