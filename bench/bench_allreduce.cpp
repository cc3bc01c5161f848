// The cost of data parallelism per optimizer step: Optimization::step of the default GPT (the
// demo's d128 L4 h4, ctx 128, vocab 512) with its gradient all-reduce, against the same step
// without one, and the bare MPI_Allreduce of as many floats; the median of --reps steps. Run it as
// one process and under `mpirun -np 2` (bench/README.md); one JSON line per run from rank 0. A
// plain program, not Google Benchmark: every rank must run the same number of collectives.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nn/distributed.h"
#include "nn/gpt.h"
#include "nn/optimization.h"

using namespace nanorlhf;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class F>
double median_ms(int reps, F f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    dist::barrier();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(t);
}

}  // namespace

int main(int argc, char **argv) {
  dist::init(&argc, &argv);
  int reps = 50;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--reps") reps = std::max(1, std::atoi(argv[i + 1]));
  manual_seed(0);
  nn::GPT model(nn::GPTConfig{});
  optim::Optimization opt(model, optim::OptimConfig{}, 1000000);
  std::vector<Tensor> params = model.parameters();
  auto set_grads = [&] {
    for (Tensor &p : params) p.set_grad(randn(p.shape()));
  };
  int64_t step = 0;
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {  // set_grads outside the timing
    set_grads();
    dist::barrier();
    const auto t0 = std::chrono::steady_clock::now();
    opt.step(step++);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double step_ms = median(t);
  const int64_t n = model.num_parameters();
  std::vector<float> flat((size_t)n, 1.f);
  const double allreduce_ms = median_ms(reps, [&] { dist::all_reduce_sum(flat.data(), n); });
  if (dist::is_main())
    std::printf("{\"bench\": \"allreduce\", \"ranks\": %d, \"params\": %lld, \"reps\": %d, "
                "\"optimizer_step_ms\": %.3f, \"mpi_allreduce_ms\": %.3f}\n",
                dist::world_size(), (long long)n, reps, step_ms, allreduce_ms);
  dist::finalize();
  return 0;
}
