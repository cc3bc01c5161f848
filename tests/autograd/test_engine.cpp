// The backward engine: accumulation, shared subgraphs, non-scalar roots, detach, grad mode,
// retain_graph, and that the graph (and its saved activations) is freed after backward.
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

TEST(Engine, ChainRuleOnSharedSubgraph) {
  Tensor x = tensor({2.0}, {.requires_grad = true});
  Tensor y = x * x;          // used twice below
  Tensor z = y * 3.0 + y;    // z = 4 x^2 -> dz/dx = 8x = 16
  z.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 16);
}

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = tensor({1.0, 2.0}, {.requires_grad = true});
  (x * 3.0).sum().backward();
  (x * x).sum().backward();
  EXPECT_TRUE(allclose(x.grad(), {3 + 2, 3 + 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, NonScalarRootTakesAGradient) {
  Tensor x = tensor({1.0, 2.0, 3.0}, {.requires_grad = true});
  Tensor y = x * x;
  y.backward(tensor({1.0, 0.5, 0.0}));
  EXPECT_TRUE(allclose(x.grad(), {2, 2, 0}));
}

TEST(Engine, DetachAndNoGradStopTheGraph) {
  Tensor x = tensor({3.0}, {.requires_grad = true});
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.storage(), x.storage());
  {
    NoGradGuard ng;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
  }
  Tensor y = x * 2.0;
  EXPECT_TRUE(y.requires_grad());
  Tensor z = (y.detach() * x).sum();  // only the direct x path counts: dz/dx = y = 6
  z.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 6);
}

TEST(Engine, SecondBackwardNeedsRetainGraph) {
  Tensor x = tensor({1.0}, {.requires_grad = true});
  Tensor y = exp(x) * 2.0;
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().item(), 4 * std::exp(1.0), 1e-5);
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Engine, GraphAndActivationsAreFreedAfterBackward) {
  Tensor w = randn({256, 256}, {.requires_grad = true});
  size_t before = cpu_bytes_allocated();
  {
    Tensor h = randn({64, 256});
    for (int i = 0; i < 8; ++i) h = tanh(matmul(h, w));
    Tensor loss = h.sum();
    loss.backward();
  }
  w.zero_grad();
  // Everything made in the scope (activations, saved tensors, gradients) is gone again.
  EXPECT_LE(cpu_bytes_allocated(), before);
}

TEST(Engine, DeepGraphsDoNotOverflowTheStack) {
  Tensor x = tensor({1.0}, {.requires_grad = true});
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y + 0.0;
  y.backward();
  EXPECT_DOUBLE_EQ(x.grad().item(), 1);
}

}  // namespace
