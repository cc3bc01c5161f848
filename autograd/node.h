// The autograd graph: each op that needs a gradient records a Node holding its backward formula
// (a closure over the saved tensors) and edges to the nodes or leaves of its inputs.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace nanorlhf::autograd {

// Maps the gradient of the op's output to one gradient per input (undefined where not needed).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor &grad_output)>;

struct Node;
struct Edge {
  std::shared_ptr<Node> node;         // the input was made by an op
  std::shared_ptr<TensorImpl> leaf;   // or the input is a leaf that requires grad
};

struct Node {
  const char *name;
  std::vector<Edge> next;
  BackwardFn backward;  // released after use unless the graph is retained
};

// Grad mode: thread-local switch that turns graph recording off (inference, backward itself).
bool is_grad_enabled();
void set_grad_enabled(bool on);

// Record `out = op(inputs)` if grad mode is on and some input requires grad. Saved outputs must
// be captured as out.detach() inside `fn`, or the node would keep itself alive.
Tensor record(const char *name, const std::vector<Tensor> &inputs, Tensor out, BackwardFn fn);

// The backward sweep (autograd/engine.cpp).
void run_backward(const Tensor &root, const Tensor &grad, bool retain_graph);

}  // namespace nanorlhf::autograd

namespace nanorlhf {

// RAII: no graph is recorded inside the scope.
struct NoGradGuard {
  NoGradGuard() : prev(autograd::is_grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(prev); }
  bool prev;
};
struct EnableGradGuard {
  EnableGradGuard() : prev(autograd::is_grad_enabled()) { autograd::set_grad_enabled(true); }
  ~EnableGradGuard() { autograd::set_grad_enabled(prev); }
  bool prev;
};

}  // namespace nanorlhf
