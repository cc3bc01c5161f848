// Module tree walks: parameters, state_dict, train/eval, device moves.
#include "nn/module.h"

#include <set>

namespace nanorlhf::nn {

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(const std::string &prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto &[n, t] : params_) out.emplace_back(prefix + n, t);
  for (const auto &[n, m] : children_) {
    auto sub = m->named_parameters(prefix + n + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  std::set<TensorImpl *> seen;  // tied weights appear once
  for (auto &[n, t] : named_parameters())
    if (seen.insert(t.impl_ptr().get()).second) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto &t : parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto &[n, m] : children_) m->train(on);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto &[n, t] : named_parameters()) out[n] = t.detach();
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor> &state, bool strict) {
  auto mine = named_parameters();
  std::set<std::string> used;
  for (auto &[name, p] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      NR_CHECK(!strict, "load_state_dict: missing parameter '{}' (shape {})", name, shape_str(p.shape()));
      continue;
    }
    NR_CHECK(it->second.shape() == p.shape(), "load_state_dict: parameter '{}' has shape {} in the model but {} in the checkpoint",
             name, shape_str(p.shape()), shape_str(it->second.shape()));
    NoGradGuard ng;
    p.copy_(it->second);
    used.insert(name);
  }
  if (strict)
    for (auto &[name, t] : state)
      NR_CHECK(used.count(name), "load_state_dict: unexpected parameter '{}' (shape {}) in the checkpoint", name,
               shape_str(t.shape()));
}

void Module::copy_from(const Module &other) { load_state_dict(other.state_dict(), true); }

void Module::to(Device device) {
  for (auto &[n, t] : params_) {
    if (t.device() == device) continue;
    // Swap the storage under the same TensorImpl, so handles held elsewhere (optimizers) stay valid.
    Tensor moved = t.detach().to(device);
    t.impl().storage = moved.storage();
    t.impl().offset = moved.offset();
    t.impl().strides = moved.strides();
    t.impl().grad = nullptr;
  }
  for (auto &[n, m] : children_) m->to(device);
}

void Module::zero_grad() {
  for (auto &t : parameters()) t.zero_grad();
}

void Module::requires_grad_(bool on) {
  for (auto &t : parameters()) t.impl().requires_grad = on;
}

Tensor Module::register_parameter(const std::string &name, Tensor t) {
  NR_CHECK(t.is_leaf(), "register_parameter('{}'): parameters must be leaf tensors", name);
  if (is_floating(t.dtype())) t.impl().requires_grad = true;
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

}  // namespace nanorlhf::nn
