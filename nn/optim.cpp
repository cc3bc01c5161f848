// Optimizers (SGD with momentum, AdamW), global-norm gradient clipping and learning-rate schedules.
// AdamW runs the fused kernel of the parameter's device; state tensors are created on first use.
#include "nn/optim.h"

#include <cmath>
#include <numbers>

#include "kernels/cpu/nn_kernels.h"
#ifdef NANORLHF_WITH_CUDA
#include "kernels/cuda/cuda_api.h"
#endif

namespace nanorlhf::optim {

void Optimizer::zero_grad() {
  // set-to-none, as PyTorch's default: the next backward writes fresh gradients
  for (auto &p : params_) p.zero_grad();
}

namespace {

// The gradient of p, contiguous and checked against p, or undefined when p has none.
Tensor grad_of(const Tensor &p, const char *who) {
  Tensor g = p.grad();
  if (!g.defined()) return g;
  NR_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
           "{}: gradient {} {} on {} does not match parameter {} {} on {}", who, shape_str(g.shape()),
           dtype_name(g.dtype()), g.device().str(), shape_str(p.shape()), dtype_name(p.dtype()), p.device().str());
  return g.is_contiguous() ? g : g.contiguous();
}

void check_param(const Tensor &p, const char *who) {
  NR_CHECK(p.defined() && is_floating(p.dtype()), "{}: parameters must be float32 or float64 tensors", who);
  NR_CHECK(p.is_contiguous(), "{}: parameter {} is not contiguous", who, shape_str(p.shape()));
}

}  // namespace

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, SGDOptions opts) : Optimizer(std::move(params)), opts_(opts) {
  NR_CHECK(opts.lr >= 0, "SGD: lr must be >= 0, got {}", opts.lr);
  NR_CHECK(opts.momentum >= 0 && opts.momentum < 1, "SGD: momentum must be in [0, 1), got {}", opts.momentum);
  for (auto &p : params_) check_param(p, "SGD");
  lr_ = opts.lr;
  buf_.resize(params_.size());
}

// SGD with momentum and L2 weight decay (PyTorch's torch.optim.SGD, dampening 0, no Nesterov):
// d_t = g_t + \lambda \theta_{t-1}, \quad b_1 = d_1, \quad b_t = \mu b_{t-1} + d_t \; (t > 1)
// \theta_t = \theta_{t-1} - \eta \, b_t
// Written with tensor ops, so it runs on any device; SGD is the teaching optimizer, not the hot path.
void SGD::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor &p = params_[i];
    Tensor g = grad_of(p, "SGD");
    if (!g.defined()) continue;
    Tensor d = opts_.weight_decay != 0 ? g + p.detach() * opts_.weight_decay : g;
    if (opts_.momentum != 0) {
      if (!buf_[i].defined()) buf_[i] = d.clone();
      else buf_[i].copy_(buf_[i] * opts_.momentum + d);
      d = buf_[i];
    }
    p.copy_(p.detach() - d * lr_);
  }
}

// ---- AdamW ----------------------------------------------------------------------------------

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opts) : Optimizer(std::move(params)), opts_(opts) {
  NR_CHECK(opts.lr >= 0, "AdamW: lr must be >= 0, got {}", opts.lr);
  NR_CHECK(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1,
           "AdamW: betas must be in [0, 1), got ({}, {})", opts.beta1, opts.beta2);
  NR_CHECK(opts.eps > 0, "AdamW: eps must be > 0, got {}", opts.eps);
  for (auto &p : params_) check_param(p, "AdamW");
  lr_ = opts.lr;
  m_.resize(params_.size());
  v_.resize(params_.size());
}

std::map<std::string, Tensor> AdamW::state_dict() const {
  std::map<std::string, Tensor> out{{"step", from_vector<int64_t>({t_}, {1})}};
  for (size_t i = 0; i < params_.size(); ++i)
    if (m_[i].defined()) {
      out.emplace("exp_avg." + std::to_string(i), m_[i].detach().cpu().clone());
      out.emplace("exp_avg_sq." + std::to_string(i), v_[i].detach().cpu().clone());
    }
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, Tensor> &state) {
  auto step = state.find("step");
  NR_CHECK(step != state.end() && step->second.numel() == 1 && step->second.dtype() == DType::Int64,
           "AdamW state: no int64 'step'");
  std::vector<Tensor> m(params_.size()), v(params_.size());
  size_t n = 1;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto a = state.find("exp_avg." + std::to_string(i)), b = state.find("exp_avg_sq." + std::to_string(i));
    NR_CHECK((a == state.end()) == (b == state.end()), "AdamW state: parameter {} has only one of its two moments", i);
    if (a == state.end()) continue;
    for (const Tensor *t : {&a->second, &b->second})
      NR_CHECK(t->shape() == params_[i].shape() && t->dtype() == params_[i].dtype(),
               "AdamW state: the moments of parameter {} are {} {} but the parameter is {} {}", i,
               shape_str(t->shape()), dtype_name(t->dtype()), shape_str(params_[i].shape()),
               dtype_name(params_[i].dtype()));
    m[i] = a->second.to(params_[i].device()).clone();
    v[i] = b->second.to(params_[i].device()).clone();
    n += 2;
  }
  NR_CHECK(n == state.size(), "AdamW state: {} entries, of which only {} belong to the {} parameters", state.size(), n,
           params_.size());
  m_ = std::move(m);
  v_ = std::move(v);
  t_ = step->second.to_vector<int64_t>()[0];
}

namespace {

// Float64 AdamW for gradchecks and hand-computed tests: the same equations as the float kernel.
void adamw_step_f64(double *p, const double *g, double *m, double *v, int64_t n, double lr, double b1, double b2,
                    double eps, double wd, int64_t t) {
  const double bc1 = 1.0 - std::pow(b1, double(t)), bc2 = 1.0 - std::pow(b2, double(t));
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const double mhat = m[i] / bc1, vhat = v[i] / bc2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + wd * p[i]);
  }
}

}  // namespace

// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2; decay
// scaled by the learning rate as in PyTorch), step t counted from 1:
// m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2
// \hat m_t = m_t / (1-\beta_1^t), \quad \hat v_t = v_t / (1-\beta_2^t)
// \theta_t = \theta_{t-1} - \eta \left( \hat m_t / (\sqrt{\hat v_t} + \epsilon) + \lambda \theta_{t-1} \right)
// The arithmetic lives in the kernels (kernels/cpu/adamw.cpp, kernels/cuda/adamw.cu).
void AdamW::step() {
  ++t_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor &p = params_[i];
    Tensor g = grad_of(p, "AdamW");
    if (!g.defined()) continue;
    if (!m_[i].defined()) {  // lazily, on the parameter's device: a model moved after construction still works
      m_[i] = zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()});
      v_[i] = zeros(p.shape(), {.dtype = p.dtype(), .device = p.device()});
    } else if (!(m_[i].device() == p.device())) {
      m_[i] = m_[i].to(p.device());
      v_[i] = v_[i].to(p.device());
    }
    const int64_t n = p.numel();
    if (p.dtype() == DType::Float64) {
      NR_CHECK(p.device().is_cpu(), "AdamW: float64 parameters are supported on the CPU only");
      adamw_step_f64(p.data_ptr<double>(), g.data_ptr<double>(), m_[i].data_ptr<double>(), v_[i].data_ptr<double>(),
                     n, lr_, opts_.beta1, opts_.beta2, opts_.eps, opts_.weight_decay, t_);
    } else if (p.device().is_cpu()) {
      kernels::cpu::adamw_step(p.data_ptr<float>(), g.data_ptr<float>(), m_[i].data_ptr<float>(),
                               v_[i].data_ptr<float>(), n, float(lr_), float(opts_.beta1), float(opts_.beta2),
                               float(opts_.eps), float(opts_.weight_decay), t_);
    } else {
#ifdef NANORLHF_WITH_CUDA
      kernels::cuda::adamw_step(p.data_ptr<float>(), g.data_ptr<float>(), m_[i].data_ptr<float>(),
                                v_[i].data_ptr<float>(), n, float(lr_), float(opts_.beta1), float(opts_.beta2),
                                float(opts_.eps), float(opts_.weight_decay), t_);
#else
      throw Error("AdamW: parameter on " + p.device().str() + " but this build has no CUDA backend");
#endif
    }
  }
}

// ---- gradient clipping ----------------------------------------------------------------------

// Global-norm clipping (Pascanu et al. 2013, "On the difficulty of training recurrent neural
// networks", Sec. 3.2), with PyTorch's clip_grad_norm_ coefficient:
// \|g\| = \sqrt{\sum_p \sum_i g_{p,i}^2}, \quad
// g \leftarrow g \cdot \min\left(1, \frac{c}{\|g\| + 10^{-6}}\right)
// A non-finite norm is returned as is and leaves the gradients alone (the caller decides).
double clip_grad_norm_(const std::vector<Tensor> &params, double max_norm) {
  NoGradGuard no_grad;
  double sq = 0;
  std::vector<Tensor> grads;
  for (const auto &p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    grads.push_back(g);
    if (g.device().is_cpu() && g.is_contiguous() && g.dtype() == DType::Float32) {
      const float *x = g.data_ptr<float>();
      double s = 0;
      const int64_t n = g.numel();
#pragma omp parallel for reduction(+ : s) schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
      sq += s;
    } else {
      sq += sum(square(g)).item();
    }
  }
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm) || max_norm <= 0) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef >= 1) return norm;
  for (auto &g : grads) {
    if (g.device().is_cpu() && g.is_contiguous() && g.dtype() == DType::Float32) {
      float *x = g.data_ptr<float>();
      const float c = float(coef);
      const int64_t n = g.numel();
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
      for (int64_t i = 0; i < n; ++i) x[i] *= c;
    } else {
      g.copy_(g * coef);
    }
  }
  return norm;
}

// ---- learning-rate schedules ----------------------------------------------------------------

// Linear warm-up over the first W steps, then decay from the base rate \eta to \eta_{min} = r\eta
// over the remaining steps (warm-up as in nanoGPT; cosine from Loshchilov & Hutter 2017, SGDR):
// \eta_s = \eta \frac{s+1}{W} \quad (s < W), \qquad p = \frac{s - W}{\max(1, S - W)} \in [0, 1]
// \text{cosine: } \eta_s = \eta_{min} + \tfrac12 (\eta - \eta_{min})(1 + \cos \pi p), \quad
// \text{linear: } \eta_s = \eta - (\eta - \eta_{min}) p, \quad \text{constant: } \eta_s = \eta
double lr_schedule(const std::string &kind, int64_t step, int64_t total, int64_t warmup, double base_lr,
                   double min_lr_ratio) {
  NR_CHECK(kind == "constant" || kind == "cosine" || kind == "linear",
           "unknown lr schedule '{}'; expected constant, cosine or linear", kind);
  NR_CHECK(step >= 0 && warmup >= 0 && total >= 0, "lr_schedule: step {}, total {} and warmup {} must be >= 0", step,
           total, warmup);
  if (step < warmup) return base_lr * double(step + 1) / double(warmup);
  if (kind == "constant") return base_lr;
  double p = double(step - warmup) / double(std::max<int64_t>(1, total - warmup));
  p = std::min(1.0, std::max(0.0, p));
  const double min_lr = min_lr_ratio * base_lr;
  if (kind == "cosine") return min_lr + 0.5 * (base_lr - min_lr) * (1 + std::cos(std::numbers::pi * p));
  return base_lr - (base_lr - min_lr) * p;
}

}  // namespace nanorlhf::optim
