// Module: the base of every layer and model. It owns named parameters and child modules, so
// parameters(), state_dict(), train()/eval() and to(device) walk the whole tree.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::nn {

class Module {
 public:
  virtual ~Module() = default;

  // Every parameter in registration order, with dotted names ("blocks.0.attn.qkv.weight").
  std::vector<std::pair<std::string, Tensor>> named_parameters(const std::string &prefix = "") const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Parameters (and buffers) by name; load checks every name and shape and names both on a mismatch.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor> &state, bool strict = true);
  // Copies parameter values from another module of the same architecture (e.g. the frozen reference).
  void copy_from(const Module &other);

  void to(Device device);  // moves every parameter (in place: the Tensor handles stay valid)
  void zero_grad();
  // Turn gradients of every parameter on or off (freeze a model).
  void requires_grad_(bool on);

 protected:
  Tensor register_parameter(const std::string &name, Tensor t);  // returns the handle to keep
  template <class M> std::shared_ptr<M> register_module(const std::string &name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace nanorlhf::nn
