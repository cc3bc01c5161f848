// Optimizers and schedules: SGD with momentum, AdamW (decoupled weight decay, bias correction),
// global-norm gradient clipping, and learning-rate schedules.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;  // parameters without a gradient are skipped
  void zero_grad();
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  const std::vector<Tensor> &params() const { return params_; }

 protected:
  std::vector<Tensor> params_;
  double lr_ = 1e-3;
};

struct SGDOptions { double lr = 1e-2, momentum = 0.0, weight_decay = 0.0; };
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions opts = {});
  void step() override;
 private:
  SGDOptions opts_;
  std::vector<Tensor> buf_;
};

struct AdamWOptions { double lr = 3e-4, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0; };
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions opts = {});
  void step() override;  // uses the AdamW kernel of the parameters' device
  int64_t steps() const { return t_; }
  // The moments of every parameter that has them ("exp_avg.<i>", "exp_avg_sq.<i>", PyTorch's names,
  // i = the parameter's index) and the step count ("step"), on the CPU: a checkpoint's optimizer
  // state. load_state_dict checks the shapes and puts each moment on its parameter's device.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor> &state);
 private:
  AdamWOptions opts_;
  std::vector<Tensor> m_, v_;
  int64_t t_ = 0;
};

// Scales all gradients so their global L2 norm is at most max_norm; returns the norm before clipping.
double clip_grad_norm_(const std::vector<Tensor> &params, double max_norm);

// lr(step) for step in [0, total): "constant", "cosine" or "linear" decay after linear warm-up.
double lr_schedule(const std::string &kind, int64_t step, int64_t total, int64_t warmup, double base_lr,
                   double min_lr_ratio = 0.1);

}  // namespace nanorlhf::optim
