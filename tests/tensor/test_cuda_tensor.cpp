// The engine on CUDA through the Tensor API: every op's forward and gradients on the GPU equal the
// CPU's to tolerance, the RNG streams agree, devices are never mixed silently, and a few GPT
// training steps on CUDA match the same steps on the CPU. Skipped without a device.
#include "cuda_skip.h"
#include "kernels/cuda/cuda_api.h"
#include "nn/gpt.h"
#include "nn/optim.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

struct Case {
  const char *name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor> &)> fn;
  double lo = -1, hi = 1;
};

std::vector<Case> cases() {
  Tensor idx = from_vector<int64_t>({3, 0, 3, 1}, {2, 2});
  Tensor tgt = from_vector<int64_t>({1, -100, 4, 0, 2, 2}, {6});
  Tensor gi = from_vector<int64_t>({0, 4, 2, 2, 1, 3}, {3, 2});
  return {
      {"exp", {{5, 7}}, [](auto &x) { return exp(x[0]); }},
      {"log", {{5, 7}}, [](auto &x) { return log(x[0]); }, 0.2, 2},
      {"gelu", {{33, 9}}, [](auto &x) { return gelu(x[0]); }},
      {"tanh_sigmoid_silu", {{4, 4}}, [](auto &x) { return tanh(x[0]) + sigmoid(x[0]) * silu(x[0]); }},
      {"broadcast_mul_add", {{3, 1, 5}, {4, 1}}, [](auto &x) { return x[0] * x[1] + x[1] / (x[0] * x[0] + 1.0); }},
      {"transposed_inputs", {{6, 5}, {5, 6}}, [](auto &x) { return x[0].t() - x[1] * 2.0; }},
      {"sum_mean_var", {{4, 5, 6}}, [](auto &x) { return sum(x[0], {1}) + mean(x[0], {1}) * var(x[0], {1}); }},
      {"amax_logsumexp", {{4, 9}}, [](auto &x) { return amax(x[0], {1}) + logsumexp(x[0], {1}); }},
      {"matmul_batched_broadcast", {{2, 3, 4, 5}, {3, 5, 6}}, [](auto &x) { return matmul(x[0], x[1]); }},
      {"matmul_transposed", {{7, 5}, {6, 7}}, [](auto &x) { return matmul(x[0].t(), x[1].t()); }},
      {"softmax_dims", {{3, 4, 5}}, [](auto &x) { return softmax(x[0], 1) + log_softmax(x[0], -1); }},
      {"layer_norm", {{6, 8}, {8}, {8}}, [](auto &x) { return layer_norm(x[0], x[1], x[2]); }},
      {"cross_entropy", {{6, 5}}, [tgt](auto &x) { return cross_entropy(x[0], tgt); }},
      {"embedding", {{5, 3}}, [idx](auto &x) { return embedding(x[0], idx); }},
      {"gather", {{3, 5}}, [gi](auto &x) { return gather(x[0], 1, gi); }},
      {"cat_narrow_where", {{3, 4}, {3, 2}}, [](auto &x) {
         Tensor c = cat({x[0], x[1]}, 1);
         return where(c > 0.0, c.narrow(1, 1, 4), -c.narrow(1, 0, 4)) + triu(c.narrow(1, 0, 3));
       }},
  };
}

class CudaOps : public ::testing::TestWithParam<Case> {};

TEST_P(CudaOps, ForwardAndGradientsMatchTheCpu) {
  NR_SKIP_WITHOUT_CUDA();
  const Case &c = GetParam();
  manual_seed(3);
  std::vector<Tensor> cpu, gpu;
  for (auto &s : c.shapes) {
    Tensor t = (rand(s) * (c.hi - c.lo) + c.lo).detach();
    cpu.push_back(t.detach().requires_grad_(true));
    gpu.push_back(t.detach().cuda().requires_grad_(true));
  }
  Tensor yc = c.fn(cpu), yg = c.fn(gpu);
  ASSERT_TRUE(yg.is_cuda());
  EXPECT_TRUE(allclose(yg, yc.to_vector<double>(), {.atol = 1e-5, .rtol = 1e-4})) << c.name << " forward";
  Tensor w = randn(yc.shape());
  (yc * w).sum().backward();
  (yg * w.cuda()).sum().backward();
  for (size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_TRUE(gpu[i].grad().defined()) << c.name << " input " << i;
    EXPECT_TRUE(gpu[i].grad().is_cuda());
    EXPECT_TRUE(allclose(gpu[i].grad(), cpu[i].grad().to_vector<double>(), {.atol = 1e-5, .rtol = 1e-4})) << c.name << " grad " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(All, CudaOps, ::testing::ValuesIn(cases()), [](const auto &i) { return std::string(i.param.name); });

TEST(CudaTensor, RandomStreamsEqualTheCpu) {
  NR_SKIP_WITHOUT_CUDA();
  manual_seed(9);
  Tensor a = rand({1001});
  manual_seed(9);
  Tensor b = rand({1001}, {.device = Device::cuda()});
  EXPECT_EQ(b.to_vector<float>(), a.to_vector<float>());
}

TEST(CudaTensor, MixingDevicesIsAClearError) {
  NR_SKIP_WITHOUT_CUDA();
  Tensor a = ones({2}), b = ones({2}).cuda();
  try {
    (void)(a + b);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("different devices"), std::string::npos) << e.what();
  }
}

TEST(CudaTensor, GptTrainingStepsMatchTheCpu) {
  NR_SKIP_WITHOUT_CUDA();
  nn::GPTConfig cfg{.vocab = 64, .ctx = 16, .d_model = 32, .n_layer = 2, .n_head = 4};
  manual_seed(1);
  nn::GPT cpu_model(cfg);
  manual_seed(1);
  nn::GPT gpu_model(cfg);
  gpu_model.to(Device::cuda());
  Tensor ids = randint(0, 64, {4, 16});
  // Next-token targets: position t predicts ids[t+1]; the last position predicts nothing (-100).
  std::vector<int64_t> iv = ids.to_vector<int64_t>(), tv(iv.size(), -100);
  for (size_t b = 0; b < 4; ++b)
    for (size_t t = 0; t + 1 < 16; ++t) tv[b * 16 + t] = iv[b * 16 + t + 1];
  Tensor tgt = from_vector<int64_t>(tv, {4, 16});
  optim::AdamW oc(cpu_model.parameters(), {.lr = 1e-2}), og(gpu_model.parameters(), {.lr = 1e-2});
  for (int step = 0; step < 3; ++step) {
    Tensor lc = cross_entropy(cpu_model(ids), tgt);
    Tensor lg = cross_entropy(gpu_model(ids.cuda()), tgt.cuda());
    EXPECT_TRUE(isclose(lg.item(), lc.item(), {.atol = 0, .rtol = 1e-4})) << "step " << step;
    oc.zero_grad(); og.zero_grad();
    lc.backward(); lg.backward();
    oc.step(); og.step();
  }
}

}  // namespace
