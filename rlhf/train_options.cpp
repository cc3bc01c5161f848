// The optimizer's config keys.
#include "rlhf/train_options.h"


namespace nanorlhf::rlhf {

const OptionTable<optim::OptimConfig> &optim_options() {
  using O = optim::OptimConfig;
  static const OptionTable<O> t = [] {
    OptionTable<O> t;
    t.add("lr", &O::lr, "peak learning rate", Range::above(0))
        .add("min_lr_ratio", &O::min_lr_ratio, "final lr as a fraction of the peak (cosine/linear)", Range::between(0, 1))
        .add("warmup", &O::warmup, "linear warm-up steps", Range::at_least(0))
        .add("schedule", &O::schedule, "lr schedule after warm-up", {}, optim::schedules())
        .add("weight_decay", &O::weight_decay, "AdamW decoupled weight decay (matrices only)", Range::at_least(0))
        .add("beta1", &O::beta1, "AdamW beta1", Range::between(0, 1))
        .add("beta2", &O::beta2, "AdamW beta2", Range::between(0, 1))
        .add("grad_clip", &O::grad_clip, "max global gradient norm; 0 = off", Range::at_least(0))
        .add("skip_nonfinite", &O::skip_nonfinite,
             "skip an optimizer step whose gradient norm is NaN or inf (counted as skipped_steps) instead of stopping");
    return t;
  }();
  return t;
}

}  // namespace nanorlhf::rlhf
