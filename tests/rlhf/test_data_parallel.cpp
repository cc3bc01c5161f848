// Data parallelism: the `nanorlhf` program under `mpirun -np 2` trains as one process does. For
// the reward model, SFT, DPO, PPO and GRPO, over 20 float32 steps (10 for the samplers) on a micro
// model, a global batch of 8 as 1 process x 8, 2 ranks x 4 and 2 ranks x 2 x 2 accumulation steps
// gives the same loss and grad-norm trajectories. A batch that does not divide names the three
// numbers; a rank killed mid-run stops the job and leaves no half-written checkpoint.
// Skips where the build has no MPI or `mpirun` is absent.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"

using namespace nanorlhf;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kRelTol = 2e-4;  // float32 sums in another order, over 10-20 Adam steps

struct Result {
  int rc = 0;
  std::string output;
};

Result shell(const std::string &cmd) {
  Result r;
  FILE *p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

const std::string kCli = NANORLHF_CLI;
// As root in a container too; the ranks share this machine's cores. Sanitizer builds: OpenMPI's
// own allocations are not this project's leaks.
const std::string kMpirun =
    "mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS=detect_leaks=0 -x OMP_NUM_THREADS=1 -np 2 ";

bool have_mpirun() {
#if !NANORLHF_TEST_MPI
  return false;
#else
  return shell("command -v mpirun").rc == 0;
#endif
}

#define SKIP_WITHOUT_MPI()                                                                               \
  if (!have_mpirun())                                                                                    \
  GTEST_SKIP() << "no MPI: this build has no MPI or mpirun is absent (make deps installs OpenMPI, then " \
                  "rebuild)"

struct Trajectory {
  std::vector<double> loss, grad_norm;
};

Trajectory read_metrics(const std::string &run, const std::string &loss_key) {
  Trajectory t;
  std::ifstream f(run + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    json j = json::parse(line);
    if (j.contains("grad_norm")) t.loss.push_back(j[loss_key]), t.grad_norm.push_back(j["grad_norm"]);
  }
  return t;
}

double max_rel_diff(const std::vector<double> &a, const std::vector<double> &b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]) / std::max(1e-3, std::fabs(a[i])));
  return d;
}

// The inputs every stage here reads: a random micro "SFT" run, pairs whose completions differ in
// length, demonstrations, prompts, and a reward model trained from them by one process.
class DataParallel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = (fs::temp_directory_path() / ("nanorlhf_test_dp_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    manual_seed(3);
    nn::Tokenizer tok;
    nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2});
    rlhf::save_run(dir_ + "/sft", gpt, tok, json::object());
    const char *answers[] = {"Yes.", "No, not today.", "The zorb is blue.", "1 2 3", "Hello there, Ann!", "ok",
                             "Big fish swim deep.", "Red."};
    std::vector<json> pairs, demos, prompts;
    for (int i = 0; i < 8; ++i) {
      const std::string q = "Question " + std::to_string(i) + "?";
      pairs.push_back({{"prompt", q}, {"chosen", answers[i]}, {"rejected", answers[(i + 3) % 8]}});
      demos.push_back({{"prompt", q}, {"completion", answers[i]}});
      prompts.push_back({{"prompt", q}});
    }
    rlhf::write_jsonl(dir_ + "/pairs.jsonl", pairs);
    rlhf::write_jsonl(dir_ + "/sft.jsonl", demos);
    rlhf::write_jsonl(dir_ + "/prompts.jsonl", prompts);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // `stage` with `args` as one process (8 x 1), as 2 ranks x 4, and as 2 ranks x 2 x 2: the three
  // trajectories must agree.
  static void expect_invariant(const std::string &stage, const std::string &args, const std::string &loss_key) {
    const std::string common = " " + stage + " " + args + " --log_every 1 --overwrite";
    Result one = shell(kCli + common + " --out " + dir_ + "/" + stage + "_1");
    ASSERT_EQ(one.rc, 0) << one.output;
    const Trajectory whole = read_metrics(dir_ + "/" + stage + "_1", loss_key);
    for (int64_t a : {1, 2}) {
      const std::string out = dir_ + "/" + stage + "_2x" + std::to_string(a);
      Result two = shell(kMpirun + kCli + common + " --gradient_accumulation_steps " + std::to_string(a) + " --out " +
                         out);
      ASSERT_EQ(two.rc, 0) << two.output;
      EXPECT_NE(two.output.find("rank 1 of world size 2"), std::string::npos) << two.output;
      const Trajectory cut = read_metrics(out, loss_key);
      const double d = std::max(max_rel_diff(whole.loss, cut.loss), max_rel_diff(whole.grad_norm, cut.grad_norm));
      EXPECT_LT(d, kRelTol) << stage << ", 2 ranks x " << 4 / a << " x " << a;
      std::fprintf(stderr, "  %s, 2 ranks x %lld x %lld: max relative difference %.2e over %zu steps\n",
                   stage.c_str(), 4 / (long long)a, (long long)a, d, cut.loss.size());
    }
  }

  static std::string dir_;
};
std::string DataParallel::dir_;

}  // namespace

TEST_F(DataParallel, RewardModelSftAndDpoMatchOneProcess) {
  SKIP_WITHOUT_MPI();
  expect_invariant("rm", "--sft " + dir_ + "/sft --data " + dir_ + "/pairs.jsonl --eval_data= --world= --steps 20 "
                   "--batch_size 8 --lr 1e-3", "loss");
  expect_invariant("sft", "--init " + dir_ + "/sft --data " + dir_ + "/sft.jsonl --steps 20 --batch_size 8 "
                   "--lr 3e-3 --samples 0", "loss");
  expect_invariant("dpo", "--policy " + dir_ + "/sft --data " + dir_ + "/pairs.jsonl --world= --eval_prompts= "
                   "--steps 20 --batch_size 8 --lr 1e-3 --rpo_alpha 0.5", "loss");
}

TEST_F(DataParallel, PpoAndGrpoMatchOneProcess) {
  SKIP_WITHOUT_MPI();
  const std::string rm = dir_ + "/rm_for_rl";
  Result r = shell(kCli + " rm --sft " + dir_ + "/sft --data " + dir_ + "/pairs.jsonl --eval_data= --world= --steps 5 "
                   "--batch_size 8 --out " + rm + " --overwrite");
  ASSERT_EQ(r.rc, 0) << r.output;
  const std::string rl = "--policy " + dir_ + "/sft --reward_model " + rm + " --prompts " + dir_ +
                         "/prompts.jsonl --world= --eval_prompts= --max_new_tokens 8 --steps 10 --lr 5e-3";
  expect_invariant("ppo", rl + " --batch_size 8 --ppo_epochs 2", "loss/policy_avg");
  expect_invariant("grpo", rl + " --batch_size 2 --num_generations 4 --beta 0.04 --loss_type dapo", "loss");
}

TEST_F(DataParallel, AnUndividedBatchNamesRanksAndAccumulation) {
  SKIP_WITHOUT_MPI();
  Result r = shell(kMpirun + kCli + " sft --init " + dir_ + "/sft --data " + dir_ + "/sft.jsonl --steps 2 --batch_size "
                   "6 --gradient_accumulation_steps 2 --samples 0 --overwrite --out " + dir_ + "/undivided");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.output.find("sft: a batch of 6 demonstrations (batch_size) does not divide into 2 ranks x "
                          "gradient_accumulation_steps 2 micro-batches"),
            std::string::npos)
      << r.output;
}

// Rank 1 alone is killed (SIGKILL) before step 5; checkpoints every 2 steps. mpirun stops rank 0
// too, with a non-zero status; the run folder holds no finished run, and every checkpoint-N is whole.
TEST_F(DataParallel, AKilledRankStopsEveryRankAndNoCheckpointIsHalfWritten) {
  SKIP_WITHOUT_MPI();
  const std::string out = dir_ + "/killed";
  const std::string args = " sft --init " + dir_ + "/sft --data " + dir_ + "/sft.jsonl --steps 50 --batch_size 8 "
                           "--save_every 2 --samples 0 --out " + out;
  Result r = shell("mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS=detect_leaks=0 -x OMP_NUM_THREADS=1 "
                   "-np 1 " + kCli + args + " : -np 1 env NANORLHF_KILL_AT=sft:step:5 " + kCli + args);
  EXPECT_NE(r.rc, 0) << r.output;
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  int whole = 0;
  for (const auto &e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    // A checkpoint is renamed whole from checkpoint-N.tmp.<pid> (a stray the next run removes).
    if (name.rfind("checkpoint-", 0) == 0 && name.find(".tmp.") == std::string::npos) {
      EXPECT_TRUE(fs::exists(e.path() / "trainer_state.json")) << name;
      ++whole;
    }
  }
  EXPECT_GE(whole, 1);  // checkpoint-2 at least was written before the kill
}
