// Tests of the CUDA fused nn kernels (softmax.cu, layer_norm.cu, cross_entropy.cu, embedding.cu,
// adamw.cu, attention.cu) against the CPU kernels of kernels/cpu/nn_kernels.h: every version, row
// lengths around the warp and block sizes, one-element and empty inputs, null optional pointers,
// ignored targets, repeated indices, and bitwise-deterministic layer_norm parameter gradients.
// Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/nn_kernels.h"
#include "kernels/cuda/versions.h"

namespace kc = nanorlhf::kernels::cuda;
namespace cpu = nanorlhf::kernels::cpu;
using namespace nr_cuda_test;

namespace {
struct Shape {
  int64_t rows, cols;
};
const std::vector<Shape> kRowShapes = {{1, 1},    {3, 7},    {4, 32},   {5, 33},  {9, 255},   {2, 1024},
                                       {3, 1025}, {2, 4099}, {130, 64}, {7, 9000}, {1, 50257}, {0, 16}};
const Tol kTol{1e-5, 1e-4};
}  // namespace

// ---- softmax -----------------------------------------------------------------------------------

TEST(CudaSoftmax, ForwardEveryVersionMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &s : kRowShapes) {
    const int64_t n = s.rows * s.cols;
    std::vector<float> x = rand_floats(n, -6, 6), ref(n), ref_log(n);
    cpu::softmax_forward<float>(x.data(), ref.data(), s.rows, s.cols);
    cpu::log_softmax_forward<float>(x.data(), ref_log.data(), s.rows, s.cols);
    DeviceBuffer<float> dx(x), dy(n);
    for (int v = 1; v <= kc::versions::kSoftmaxVersions; ++v) {
      dy.poison();
      kc::versions::softmax_forward(v, dx.get(), dy.get(), s.rows, s.cols);
      EXPECT_TRUE(allclose(dy.download(), ref, kTol)) << "v" << v << " " << s.rows << "x" << s.cols;
    }
    dy.poison();
    kc::softmax_forward(dx.get(), dy.get(), s.rows, s.cols);
    EXPECT_TRUE(allclose(dy.download(), ref, kTol)) << "public " << s.rows << "x" << s.cols;
    dy.poison();
    kc::log_softmax_forward(dx.get(), dy.get(), s.rows, s.cols);
    EXPECT_TRUE(allclose(dy.download(), ref_log, kTol)) << "log " << s.rows << "x" << s.cols;
  }
}

TEST(CudaSoftmax, LargeLogitsStayFinite) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t rows = 4, cols = 3000;
  std::vector<float> x = rand_floats(rows * cols, 900, 1000), ref(rows * cols);
  cpu::log_softmax_forward<float>(x.data(), ref.data(), rows, cols);
  DeviceBuffer<float> dx(x), dy(rows * cols);
  kc::log_softmax_forward(dx.get(), dy.get(), rows, cols);
  EXPECT_TRUE(allclose(dy.download(), ref, kTol));
}

TEST(CudaSoftmax, BackwardMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &s : kRowShapes) {
    const int64_t n = s.rows * s.cols;
    std::vector<float> x = rand_floats(n, -4, 4), dyv = rand_floats(n), y(n), ylog(n), ref(n), ref_log(n);
    cpu::softmax_forward<float>(x.data(), y.data(), s.rows, s.cols);
    cpu::log_softmax_forward<float>(x.data(), ylog.data(), s.rows, s.cols);
    cpu::softmax_backward<float>(y.data(), dyv.data(), ref.data(), s.rows, s.cols);
    cpu::log_softmax_backward<float>(ylog.data(), dyv.data(), ref_log.data(), s.rows, s.cols);
    DeviceBuffer<float> dy_(y), dylog(ylog), dg(dyv), dx(n);
    dx.poison();
    kc::softmax_backward(dy_.get(), dg.get(), dx.get(), s.rows, s.cols);
    EXPECT_TRUE(allclose(dx.download(), ref, kTol)) << s.rows << "x" << s.cols;
    dx.poison();
    kc::log_softmax_backward(dylog.get(), dg.get(), dx.get(), s.rows, s.cols);
    EXPECT_TRUE(allclose(dx.download(), ref_log, Tol{1e-5 * std::sqrt((double)s.cols + 1), 1e-4}))
        << "log " << s.rows << "x" << s.cols;
  }
}

// ---- layer norm --------------------------------------------------------------------------------

TEST(CudaLayerNorm, ForwardEveryVersionMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &s : kRowShapes) {
    if (s.cols > 10000) continue;
    const int64_t n = s.rows * s.cols;
    std::vector<float> x = rand_floats(n, -3, 5), w = rand_floats(s.cols, 0.5, 1.5), b = rand_floats(s.cols);
    for (int affine = 0; affine < 2; ++affine) {
      const float *wp = affine ? w.data() : nullptr, *bp = affine ? b.data() : nullptr;
      std::vector<float> ref(n), ref_mean(s.rows), ref_rstd(s.rows);
      cpu::layer_norm_forward<float>(x.data(), wp, bp, ref.data(), ref_mean.data(), ref_rstd.data(), s.rows, s.cols,
                                     1e-5);
      DeviceBuffer<float> dx(x), dw(w), db(b), dy(n), dmean(s.rows), drstd(s.rows);
      for (int v = 0; v <= kc::versions::kLayerNormVersions; ++v) {  // 0: the public entry point
        dy.poison();
        dmean.poison();
        drstd.poison();
        const float *dwp = affine ? dw.get() : nullptr, *dbp = affine ? db.get() : nullptr;
        if (v == 0)
          kc::layer_norm_forward(dx.get(), dwp, dbp, dy.get(), dmean.get(), drstd.get(), s.rows, s.cols, 1e-5);
        else
          kc::versions::layer_norm_forward(v, dx.get(), dwp, dbp, dy.get(), dmean.get(), drstd.get(), s.rows, s.cols,
                                           1e-5);
        EXPECT_TRUE(allclose(dy.download(), ref, kTol)) << "v" << v << " affine " << affine << " " << s.cols;
        EXPECT_TRUE(allclose(dmean.download(), ref_mean, kTol)) << "mean v" << v;
        EXPECT_TRUE(allclose(drstd.download(), ref_rstd, kTol)) << "rstd v" << v;
      }
    }
  }
}

TEST(CudaLayerNorm, ForwardWithoutSavedStatistics) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t rows = 5, cols = 77;
  std::vector<float> x = rand_floats(rows * cols), ref(rows * cols), m(rows), r(rows);
  cpu::layer_norm_forward<float>(x.data(), nullptr, nullptr, ref.data(), m.data(), r.data(), rows, cols, 1e-5);
  DeviceBuffer<float> dx(x), dy(rows * cols);
  kc::layer_norm_forward(dx.get(), nullptr, nullptr, dy.get(), nullptr, nullptr, rows, cols, 1e-5);
  EXPECT_TRUE(allclose(dy.download(), ref, kTol));
}

TEST(CudaLayerNorm, BackwardMatchesCpuAndIsDeterministic) {
  NR_SKIP_WITHOUT_CUDA();
  const std::vector<Shape> shapes = {{1, 1}, {3, 7}, {5, 33}, {64, 256}, {257, 768}, {3, 1500}, {4100, 40}, {0, 8}};
  for (const auto &s : shapes) {
    const int64_t n = s.rows * s.cols;
    std::vector<float> x = rand_floats(n, -2, 2), w = rand_floats(s.cols, 0.5, 1.5), b = rand_floats(s.cols),
                       g = rand_floats(n), y(n), mean(s.rows), rstd(s.rows);
    cpu::layer_norm_forward<float>(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), s.rows, s.cols,
                                   1e-5);
    for (int affine = 0; affine < 2; ++affine) {
      const float *wp = affine ? w.data() : nullptr;
      std::vector<float> ref_dx(n), ref_dw(s.cols), ref_db(s.cols);
      cpu::layer_norm_backward<float>(g.data(), x.data(), wp, mean.data(), rstd.data(), ref_dx.data(), ref_dw.data(),
                                      ref_db.data(), s.rows, s.cols);
      DeviceBuffer<float> dg(g), dx_in(x), dw(w), dmean(mean), drstd(rstd), ddx(n), ddw(s.cols), ddb(s.cols);
      ddx.poison();
      ddw.poison();
      ddb.poison();
      kc::layer_norm_backward(dg.get(), dx_in.get(), affine ? dw.get() : nullptr, dmean.get(), drstd.get(), ddx.get(),
                              ddw.get(), ddb.get(), s.rows, s.cols);
      const Tol param_tol{1e-5 * std::sqrt((double)s.rows + 1), 1e-4};
      EXPECT_TRUE(allclose(ddx.download(), ref_dx, kTol)) << "dx " << s.rows << "x" << s.cols;
      std::vector<float> dw1 = ddw.download(), db1 = ddb.download();
      EXPECT_TRUE(allclose(dw1, ref_dw, param_tol)) << "dweight " << s.rows << "x" << s.cols;
      EXPECT_TRUE(allclose(db1, ref_db, param_tol)) << "dbias " << s.rows << "x" << s.cols;
      // same inputs, same bits: no float atomics in the parameter reduction
      kc::layer_norm_backward(dg.get(), dx_in.get(), affine ? dw.get() : nullptr, dmean.get(), drstd.get(), ddx.get(),
                              ddw.get(), ddb.get(), s.rows, s.cols);
      EXPECT_TRUE(all_equal(ddw.download(), dw1));
      EXPECT_TRUE(all_equal(ddb.download(), db1));
      // the optional outputs may be null
      ddx.poison();
      kc::layer_norm_backward(dg.get(), dx_in.get(), affine ? dw.get() : nullptr, dmean.get(), drstd.get(), ddx.get(),
                              nullptr, nullptr, s.rows, s.cols);
      EXPECT_TRUE(allclose(ddx.download(), ref_dx, kTol));
      ddb.poison();
      kc::layer_norm_backward(dg.get(), dx_in.get(), affine ? dw.get() : nullptr, dmean.get(), drstd.get(), nullptr,
                              nullptr, ddb.get(), s.rows, s.cols);
      EXPECT_TRUE(all_equal(ddb.download(), db1));
    }
  }
}

// ---- cross entropy -----------------------------------------------------------------------------

TEST(CudaCrossEntropy, ForwardAndBackwardMatchCpuWithIgnoredRows) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t ignore = -100;
  const std::vector<Shape> shapes = {{1, 1}, {4, 10}, {37, 1000}, {5, 1025}, {9, 50257}, {0, 12}};
  for (const auto &s : shapes) {
    const int64_t n = s.rows * s.cols;
    std::vector<float> logits = rand_floats(n, -8, 8), dloss = rand_floats(s.rows, 0.1f, 2.f);
    std::vector<int64_t> target = rand_indices(s.rows, 0, s.cols);
    for (int64_t r = 1; r < s.rows; r += 3) target[r] = ignore;
    std::vector<float> ref_loss(s.rows), ref_lse(s.rows), ref_d(n);
    cpu::cross_entropy_forward<float>(logits.data(), target.data(), ref_loss.data(), ref_lse.data(), s.rows, s.cols,
                                      ignore);
    cpu::cross_entropy_backward<float>(logits.data(), target.data(), ref_lse.data(), dloss.data(), ref_d.data(),
                                       s.rows, s.cols, ignore);
    DeviceBuffer<float> dl(logits), ddl(dloss), dloss_out(s.rows), dlse(s.rows), dd(n);
    DeviceBuffer<int64_t> dt(target);
    for (int v = 0; v <= kc::versions::kCrossEntropyVersions; ++v) {
      dloss_out.poison();
      dlse.poison();
      if (v == 0) kc::cross_entropy_forward(dl.get(), dt.get(), dloss_out.get(), dlse.get(), s.rows, s.cols, ignore);
      else
        kc::versions::cross_entropy_forward(v, dl.get(), dt.get(), dloss_out.get(), dlse.get(), s.rows, s.cols,
                                            ignore);
      EXPECT_TRUE(allclose(dloss_out.download(), ref_loss, kTol)) << "loss v" << v << " " << s.rows << "x" << s.cols;
      EXPECT_TRUE(allclose(dlse.download(), ref_lse, kTol)) << "lse v" << v;
    }
    DeviceBuffer<float> dref_lse(ref_lse);
    dd.poison();
    kc::cross_entropy_backward(dl.get(), dt.get(), dref_lse.get(), ddl.get(), dd.get(), s.rows, s.cols, ignore);
    EXPECT_TRUE(allclose(dd.download(), ref_d, Tol{1e-6, 1e-4})) << "dlogits " << s.rows << "x" << s.cols;
  }
}

// ---- embedding, gather, scatter ----------------------------------------------------------------

TEST(CudaEmbedding, IndexSelectAndIndexAddMatchCpu) {
  NR_SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t num, n, dim;
  };
  for (const Case &c : {Case{1, 1, 1}, Case{10, 7, 3}, Case{50, 200, 64}, Case{97, 33, 768}, Case{5, 1000, 5},
                        Case{8, 0, 4}}) {
    std::vector<float> weight = rand_floats(c.num * c.dim), dout = rand_floats(c.n * c.dim);
    std::vector<int64_t> idx = rand_indices(c.n, 0, c.num);  // repeats when n > num
    std::vector<float> ref_out(c.n * c.dim), ref_dw = rand_floats(c.num * c.dim);
    std::vector<float> dw0 = ref_dw;  // index_add accumulates into what is there
    cpu::index_select_rows<float>(weight.data(), idx.data(), ref_out.data(), c.n, c.dim);
    cpu::index_add_rows<float>(dout.data(), idx.data(), ref_dw.data(), c.n, c.dim);
    DeviceBuffer<float> dweight(weight), dd(dout), dout_sel(c.n * c.dim), ddw(dw0);
    DeviceBuffer<int64_t> didx(idx);
    dout_sel.poison();
    kc::index_select_rows(dweight.get(), didx.get(), dout_sel.get(), c.n, c.dim);
    EXPECT_TRUE(all_equal(dout_sel.download(), ref_out)) << c.num << " " << c.n << " " << c.dim;
    kc::index_add_rows(dd.get(), didx.get(), ddw.get(), c.n, c.dim);
    // atomicAdd order differs from the CPU's: compare with a tolerance
    EXPECT_TRUE(allclose(ddw.download(), ref_dw, Tol{1e-5, 1e-5})) << c.num << " " << c.n << " " << c.dim;
  }
}

TEST(CudaEmbedding, GatherAndScatterAddMatchCpu) {
  NR_SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t rows, cols, k;
  };
  for (const Case &c : {Case{1, 1, 1}, Case{4, 10, 3}, Case{33, 1000, 1}, Case{7, 5, 20}, Case{0, 3, 2}}) {
    std::vector<float> x = rand_floats(c.rows * c.cols), dout = rand_floats(c.rows * c.k);
    std::vector<int64_t> idx = rand_indices(c.rows * c.k, 0, c.cols);
    std::vector<float> ref_out(c.rows * c.k), ref_dx = rand_floats(c.rows * c.cols);
    std::vector<float> dx0 = ref_dx;
    cpu::gather_rows<float>(x.data(), idx.data(), ref_out.data(), c.rows, c.cols, c.k);
    cpu::scatter_add_rows<float>(dout.data(), idx.data(), ref_dx.data(), c.rows, c.cols, c.k);
    DeviceBuffer<float> dx(x), dd(dout), dgather(c.rows * c.k), ddx(dx0);
    DeviceBuffer<int64_t> didx(idx);
    dgather.poison();
    kc::gather_rows(dx.get(), didx.get(), dgather.get(), c.rows, c.cols, c.k);
    EXPECT_TRUE(all_equal(dgather.download(), ref_out));
    kc::scatter_add_rows(dd.get(), didx.get(), ddx.get(), c.rows, c.cols, c.k);
    EXPECT_TRUE(allclose(ddx.download(), ref_dx, Tol{1e-5, 1e-5}));
  }
}

// ---- AdamW -------------------------------------------------------------------------------------

TEST(CudaAdamW, EveryVersionMatchesCpuOverSeveralSteps) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(1001), int64_t(65541)}) {
    for (int v = 0; v <= kc::versions::kAdamWVersions; ++v) {
      std::vector<float> p = rand_floats(n), m(n, 0.f), vv(n, 0.f);
      DeviceBuffer<float> dp(p), dm(m), dv(vv), dg(n);
      for (int64_t step = 1; step <= 3; ++step) {
        std::vector<float> g = rand_floats(n);
        cpu::adamw_step(p.data(), g.data(), m.data(), vv.data(), n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
        dg.upload(g);
        if (v == 0) kc::adamw_step(dp.get(), dg.get(), dm.get(), dv.get(), n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, step);
        else
          kc::versions::adamw_step(v, dp.get(), dg.get(), dm.get(), dv.get(), n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f,
                                   step);
      }
      EXPECT_TRUE(allclose(dp.download(), p, Tol{1e-6, 1e-5})) << "p v" << v << " n=" << n;
      EXPECT_TRUE(allclose(dm.download(), m, Tol{1e-7, 1e-5})) << "m v" << v << " n=" << n;
      EXPECT_TRUE(allclose(dv.download(), vv, Tol{1e-9, 1e-5})) << "v v" << v << " n=" << n;
    }
  }
}

TEST(CudaAdamW, MisalignedPointersFallBackToScalar) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t n = 1001;
  std::vector<float> p = rand_floats(n + 1), g = rand_floats(n + 1), m(n + 1, 0.f), v(n + 1, 0.f);
  DeviceBuffer<float> dp(p), dg(g), dm(m), dv(v);
  cpu::adamw_step(p.data() + 1, g.data() + 1, m.data() + 1, v.data() + 1, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.f, 1);
  kc::adamw_step(dp.get() + 1, dg.get() + 1, dm.get() + 1, dv.get() + 1, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.f, 1);
  EXPECT_TRUE(allclose(dp.download(), p, Tol{1e-6, 1e-5}));
}

// ---- causal attention --------------------------------------------------------------------------

TEST(CudaAttention, EveryVersionMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  struct Case {
    int64_t B, H, T, D;
  };
  const std::vector<Case> cases = {{1, 1, 1, 16},  {1, 2, 7, 32},  {2, 3, 64, 64}, {1, 2, 65, 64},
                                   {2, 1, 130, 128}, {1, 1, 200, 16}, {1, 2, 33, 24}, {2, 2, 5, 3}, {0, 2, 4, 16}};
  for (const auto &c : cases) {
    const int64_t n = c.B * c.H * c.T * c.D;
    std::vector<float> q = rand_floats(n), k = rand_floats(n), v = rand_floats(n), ref(n);
    const double scale = 1.0 / std::sqrt((double)c.D);
    cpu::causal_attention_forward<float>(q.data(), k.data(), v.data(), ref.data(), c.B, c.H, c.T, c.D, scale);
    DeviceBuffer<float> dq(q), dk(k), dv(v), dout(n);
    for (int ver = 0; ver <= kc::versions::kAttentionVersions; ++ver) {
      dout.poison();
      if (ver == 0) kc::causal_attention_forward(dq.get(), dk.get(), dv.get(), dout.get(), c.B, c.H, c.T, c.D, scale);
      else
        kc::versions::causal_attention_forward(ver, dq.get(), dk.get(), dv.get(), dout.get(), c.B, c.H, c.T, c.D,
                                               scale);
      EXPECT_TRUE(allclose(dout.download(), ref, kTol))
          << "v" << ver << " B" << c.B << " H" << c.H << " T" << c.T << " D" << c.D;
    }
  }
}
