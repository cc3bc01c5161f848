// NCCL: `mpirun -np 2` with a GPU per rank sums the gradients on the GPUs (ncclAllReduce) and
// trains as one GPU process does: SFT's loss and grad-norm trajectories over 10 steps agree.
// Skips without NCCL in the build, without two GPUs, or without mpirun.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kernels/cuda/cuda_api.h"
#include "nanorlhf/nanorlhf.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"

using namespace nanorlhf;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int shell(const std::string &cmd, std::string *out) {
  FILE *p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out->append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::vector<std::pair<double, double>> trajectory(const std::string &run) {
  std::vector<std::pair<double, double>> t;
  std::ifstream f(run + "/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    json j = json::parse(line);
    if (j.contains("grad_norm")) t.emplace_back(j["loss"], j["grad_norm"]);
  }
  return t;
}

}  // namespace

TEST(Nccl, TwoGpuRanksTrainAsOneGpuProcess) {
#if !NANORLHF_TEST_NCCL
  GTEST_SKIP() << "this build has no NCCL (it needs the CUDA backend, MPI and libnccl)";
#else
  if (kernels::cuda::device_count() < 2) GTEST_SKIP() << "NCCL's test needs two CUDA devices, found "
                                                       << kernels::cuda::device_count();
  std::string ignored;
  if (shell("command -v mpirun", &ignored) != 0) GTEST_SKIP() << "no mpirun (make deps installs OpenMPI)";
  const std::string dir = (fs::temp_directory_path() / ("nanorlhf_test_nccl_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2});
  rlhf::save_run(dir + "/init", gpt, tok, json::object());
  std::vector<json> demos;
  for (int i = 0; i < 8; ++i)
    demos.push_back({{"prompt", "Question " + std::to_string(i) + "?"}, {"completion", std::string(1 + i, 'a')}});
  rlhf::write_jsonl(dir + "/sft.jsonl", demos);
  const std::string args = std::string(" sft --device cuda --init ") + dir + "/init --data " + dir +
                           "/sft.jsonl --steps 10 --batch_size 8 --log_every 1 --samples 0 --out ";
  std::string out1, out2;
  ASSERT_EQ(shell(std::string(NANORLHF_CLI) + args + dir + "/one", &out1), 0) << out1;
  ASSERT_EQ(shell("mpirun --allow-run-as-root --oversubscribe -np 2 " + std::string(NANORLHF_CLI) + args + dir + "/two",
                  &out2), 0) << out2;
  const auto a = trajectory(dir + "/one"), b = trajectory(dir + "/two");
  ASSERT_EQ(a.size(), 10u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(b[i].first, a[i].first, 2e-4 * std::fabs(a[i].first)) << "loss, step " << i;
    EXPECT_NEAR(b[i].second, a[i].second, 2e-4 * std::fabs(a[i].second)) << "grad norm, step " << i;
  }
  fs::remove_all(dir);
#endif
}
